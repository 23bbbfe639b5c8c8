package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/atollhq/atoll/events"
)

// staleFigures is what a busy keep-alive client saw after task moves.
type staleFigures struct {
	moves    int
	after    int // requests on the keep-alive connection once the move served new connections
	stray    int // of those, answered by the moved task's old backend
	affected int // moves with at least one such answer
}

// measureStale checks the runtime path against a keep-alive client that
// keeps sending: for each of n apps, one goroutine sends requests back to
// back on one keep-alive connection while one task moves to another
// backend. From 50 ms after new connections see the new backend, for
// window, every answer from the old backend is traffic for a task that is
// gone (HAProxy sent it over a server connection opened to the old
// address).
func measureStale(ctx context.Context, w *world, pr *prober, fleet []*backend, apps []*appModel, n int, window time.Duration) (staleFigures, error) {
	f := staleFigures{moves: n}
	for i := 0; i < n && i < len(apps); i++ {
		a := apps[(i*7919+500)%len(apps)]
		old := a.tasks[0]
		nb := a.spare(fleet, i+3)
		if nb == nil {
			return f, fmt.Errorf("app %d: no spare backend", a.idx)
		}
		h := startHammer(ctx, a.port)
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			h.stop()
			return f, err
		}
		if err := w.l.Commit(w.start(a, nb), w.end(a, old, events.TaskKilled)); err != nil {
			h.stop()
			return f, err
		}
		seen, err := pr.waitFor(ctx, a.port, map[string]bool{nb.id: true}, len(a.tasks)+1, time.Now().Add(10*time.Second))
		if err != nil {
			h.stop()
			return f, fmt.Errorf("keep-alive move on app %d: %w", a.idx, err)
		}
		if err := sleep(ctx, 50*time.Millisecond+window); err != nil {
			h.stop()
			return f, err
		}
		answers, herr := h.stop()
		if herr != nil {
			return f, fmt.Errorf("keep-alive client on app %d: %w", a.idx, herr)
		}
		from, to := seen.Add(50*time.Millisecond), seen.Add(50*time.Millisecond+window)
		stray := 0
		for _, an := range answers {
			if an.at.Before(from) || an.at.After(to) {
				continue
			}
			f.after++
			if an.id == old.b.id {
				stray++
			}
		}
		f.stray += stray
		if stray > 0 {
			f.affected++
		}
	}
	return f, nil
}

type answer struct {
	at time.Time
	id string
}

// hammer sends requests back to back on one keep-alive connection.
type hammer struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	answers []answer
	err     error
	p       *prober
}

func startHammer(ctx context.Context, port int) *hammer {
	ctx, cancel := context.WithCancel(ctx)
	h := &hammer{cancel: cancel, p: newProber(0, true)}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for ctx.Err() == nil {
			id, err := h.p.get(ctx, port)
			if err != nil {
				if ctx.Err() == nil {
					h.err = err
				}
				return
			}
			h.answers = append(h.answers, answer{at: time.Now(), id: id})
		}
	}()
	return h
}

// stop ends the client and returns what it got.
func (h *hammer) stop() ([]answer, error) {
	h.cancel()
	h.wg.Wait()
	h.p.client.CloseIdleConnections()
	return h.answers, h.err
}
