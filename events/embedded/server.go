// Package embedded runs the real NATS server (nats-server/v2) inside an
// atoll process, for `atoll dev`, `atoll nats` and tests.
package embedded

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartConfig runs a NATS server as cfg says (standalone, or one node of a
// cluster) and waits until it accepts clients. Shutdown is the caller's.
func StartConfig(cfg Config) (*server.Server, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats server: %w", err)
	}
	if cfg.Log != nil {
		srv.SetLogger(slogger{cfg.Log}, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("start nats server on %s: not ready after 10s", cfg.Listen)
	}
	return srv, nil
}
