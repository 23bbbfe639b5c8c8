package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// kaWatch sends requests one after the other on one keep-alive connection
// to the service port, as wrk does, and never retries (Go's http.Transport
// would retry a GET on a reused connection the server closed): a failure
// is recorded with its time, and the next request opens a new connection.
type kaWatch struct {
	mu        sync.Mutex
	start     time.Time
	sent      int
	conns     int
	failures  []string // the first 20
	nFailures int
	done      chan struct{}
}

func startKAWatch(ctx context.Context, addr string, start time.Time) *kaWatch {
	w := &kaWatch{start: start, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var conn net.Conn
		var rd *bufio.Reader
		defer func() {
			if conn != nil {
				conn.Close()
			}
		}()
		for ctx.Err() == nil {
			if conn == nil {
				c, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", addr)
				if err != nil {
					w.record(fmt.Errorf("connect: %w", err), false)
					_ = sleep(ctx, 20*time.Millisecond)
					continue
				}
				conn, rd = c, bufio.NewReader(c)
				w.mu.Lock()
				w.conns++
				w.mu.Unlock()
			}
			err := kaRequest(conn, rd, addr)
			if ctx.Err() != nil {
				return
			}
			if err == errClosed {
				w.record(nil, true)
			} else {
				w.record(err, true)
			}
			if err != nil {
				conn.Close()
				conn = nil
			}
			_ = sleep(ctx, 5*time.Millisecond)
		}
	}()
	return w
}

func kaRequest(conn net.Conn, rd *bufio.Reader, host string) error {
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.Close {
		return errClosed
	}
	return nil
}

// errClosed is an answer with "Connection: close": no failure, but the
// next request needs a new connection.
var errClosed = errors.New("connection: close")

func (w *kaWatch) record(err error, sent bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sent {
		w.sent++
	}
	if err == nil {
		return
	}
	w.nFailures++
	if len(w.failures) < 20 {
		w.failures = append(w.failures, fmt.Sprintf("+%s: %v", time.Since(w.start).Round(time.Millisecond), err))
	}
}

func (w *kaWatch) wait() { <-w.done }
