package simagent

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// Fleet is a number of simulated agents, each on a connection of its own,
// running until Stop.
type Fleet struct {
	Agents   []*Agent
	Counters *Counters

	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []*nats.Conn

	mu   sync.Mutex
	errs []error
}

// Connect dials NATS as the agent credential of node.
type Connect func(node string) (*nats.Conn, error)

// StartFleet connects n agents named prefix0 .. prefix(n-1) (a few at a
// time: every connection is a TLS handshake and a credential) and runs
// them with tmpl's settings (its NC, Node and Counters are each agent's
// own; the fleet's Counters are shared). Stop is the caller's, also after
// an error.
func StartFleet(ctx context.Context, connect Connect, n int, prefix string, tmpl Config) (*Fleet, error) {
	if n < 1 {
		return nil, fmt.Errorf("simagent: fleet of %d agents", n)
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &Fleet{Counters: &Counters{}, cancel: cancel, Agents: make([]*Agent, n), conns: make([]*nats.Conn, n)}
	var (
		dial    sync.WaitGroup
		mu      sync.Mutex
		dialErr error
	)
	next := make(chan int)
	for range min(n, 8) {
		dial.Add(1)
		go func() {
			defer dial.Done()
			for i := range next {
				node := fmt.Sprintf("%s%d", prefix, i)
				nc, err := connect(node)
				if err != nil {
					mu.Lock()
					dialErr = errors.Join(dialErr, fmt.Errorf("simagent %s: %w", node, err))
					mu.Unlock()
					continue
				}
				cfg := tmpl
				cfg.NC, cfg.Node, cfg.Counters = nc, node, f.Counters
				a, err := New(cfg)
				mu.Lock()
				f.conns[i] = nc
				if err != nil {
					dialErr = errors.Join(dialErr, err)
				} else {
					f.Agents[i] = a
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	dial.Wait()
	if dialErr != nil {
		return f, dialErr
	}
	for _, a := range f.Agents {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := a.Run(ctx); err != nil {
				f.mu.Lock()
				f.errs = append(f.errs, err)
				f.mu.Unlock()
			}
		}()
	}
	return f, nil
}

// Err is what went wrong in the agents so far (they could not subscribe).
func (f *Fleet) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}

// Stop ends every agent and closes the connections.
func (f *Fleet) Stop() {
	f.cancel()
	f.wg.Wait()
	for _, nc := range f.conns {
		if nc != nil {
			nc.Close()
		}
	}
}

// IDs maps the master's agent ids to the agents (registered ones only).
func (f *Fleet) IDs() map[string]*Agent {
	out := map[string]*Agent{}
	for _, a := range f.Agents {
		if a == nil {
			continue
		}
		if id := a.ID(); id != "" {
			out[id] = a
		}
	}
	return out
}

// Pending counts the fleet's status updates not yet acked.
func (f *Fleet) Pending() int {
	n := 0
	for _, a := range f.Agents {
		if a != nil {
			n += a.Pending()
		}
	}
	return n
}
