// Package integration holds the tests that start real atoll processes (a
// master and agents built from cmd/atoll) around a real NATS server and
// drive them through the Marathon API, as a user would.
package integration
