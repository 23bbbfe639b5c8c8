package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// backend is a task's process: an HTTP server on loopback that answers
// every request with its own id, so a response through HAProxy says which
// task served it.
type backend struct {
	id   string
	port int
	srv  *http.Server
}

// startBackends starts n backends named prefix0, prefix1, ...; they stop
// when ctx ends.
func startBackends(ctx context.Context, prefix string, n int) ([]*backend, error) {
	out := make([]*backend, 0, n)
	for i := 0; i < n; i++ {
		b, err := startBackend(ctx, fmt.Sprintf("%s%d", prefix, i))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func startBackend(ctx context.Context, id string) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", id, err)
	}
	body := []byte(id)
	b := &backend{id: id, port: ln.Addr().(*net.TCPAddr).Port}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	go func() {
		if err := b.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("backend %s stopped: %v\n", id, err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = b.srv.Close() })
	return b, nil
}
