// Package natsbus carries the cluster's events and snapshots over NATS:
// the leader's Publisher and ServeSnapshots, and the followers' Source.
//
// It is the only part of the event machinery that knows NATS. Package
// events (the model, the state, the follower) stays free of it, so that
// code which only computes on the state (the scheduler, the DNS zone, the
// HAProxy renderer) does not link a NATS client.
package natsbus
