package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// nsDialer dials from inside a network namespace while this program stays
// in the machine's: the lab's addresses are reachable only from the lab's
// namespaces, and the machine's routes are never touched.
type nsDialer struct{ ns string }

// DialContext creates the socket on a thread moved into the namespace.
// The thread stays locked and dies with its goroutine, so no other
// goroutine ever runs in the lab's namespace; a socket keeps the
// namespace it was made in.
func (d nsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		if err := enterNS(d.ns); err != nil {
			ch <- result{nil, err}
			return
		}
		c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func enterNS(ns string) error {
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	return nil
}

// httpClient is an HTTP client whose connections start in namespace ns;
// keepAlive=false makes every request a new connection, as a fresh client
// would see a failure.
func httpClient(ns string, timeout time.Duration, keepAlive bool) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       nsDialer{ns}.DialContext,
			DisableKeepAlives: !keepAlive,
			MaxIdleConns:      16,
			IdleConnTimeout:   30 * time.Second,
		},
	}
}
