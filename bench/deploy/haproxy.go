package main

import (
	"context"
	"fmt"
	"time"

	"github.com/atollhq/atoll/lbsync"
)

// showProc asks the HAProxy master for its processes once.
func showProc(ctx context.Context, socket string) (lbsync.ProcInfo, error) {
	p := &lbsync.Process{MasterSocket: socket}
	return p.ShowProc(ctx)
}

// masterReloads is the HAProxy master's reload count. While it reloads,
// the master re-executes itself and its socket refuses connections for a
// moment: it asks again for up to 10 s.
func masterReloads(ctx context.Context, socket string) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := showProc(ctx, socket)
		if err == nil {
			return info.MasterReloads, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("haproxy master at %s: %w", socket, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
