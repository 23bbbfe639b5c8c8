// Package scheduler decides where an app's tasks run and which of them go
// when it scales down. It is pure logic over a read-only *events.State, in
// the spirit of Nomad's scheduler: no network, no clock, no globals. The
// master turns its decisions into events.
//
// Constraints follow Marathon's documented semantics (UNIQUE, CLUSTER,
// GROUP_BY, LIKE, UNLIKE, MAX_PER, IS), and ParseConstraints returns
// Marathon's own validation messages so that the HTTP API can answer 422s
// exactly as Marathon does.
package scheduler
