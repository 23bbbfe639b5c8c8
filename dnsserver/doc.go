// Package dnsserver will answer Mesos-DNS-compatible names
// (task.framework.domain) from an events follower, and forward the rest.
// See DESIGN.md §5; it is built by its own issue.
package dnsserver
