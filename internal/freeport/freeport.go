// Package freeport hands out loopback ports for the servers that tests and
// benchmarks start in other processes (HAProxy, atoll lb, atoll master).
//
// A port taken from "127.0.0.1:0" and closed again is back in the kernel's
// pool at once: any process listening on ":0" meanwhile (an lb's metrics
// server, a test server in a package tested alongside) can be given the very
// port a test has just promised to HAProxy, and then one of them fails to
// bind. Ports from here come from below Linux's ephemeral range
// (32768-60999), where ":0" never lands, and never repeat within a process.
package freeport

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
)

const (
	first = 21000
	last  = 30999 // atoll agents hand out 31000-32000 to tasks by default
	span  = last - first + 1
)

// next is process-wide because the port space it divides is machine-wide.
var next atomic.Int32

func init() {
	// Start at a point that depends on the pid so that test binaries running
	// side by side (go test runs packages in parallel) walk different
	// stretches of the range.
	next.Store(int32((os.Getpid() * 131) % span))
}

// Reserve returns a port free on host for TCP (and, with udp, for UDP too)
// that no other caller in this process has been given.
func Reserve(host string, udp bool) (int, error) {
	for range 1000 {
		p := first + int(next.Add(1)%span)
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		if udp {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				ln.Close()
				continue
			}
			pc.Close()
		}
		ln.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free port on %s in %d-%d", host, first, last)
}

// T is the part of testing.TB the helpers need.
type T interface {
	Helper()
	Fatal(args ...any)
}

// Port is Reserve for TCP on host, failing t when nothing is free.
func Port(t T, host string) int {
	t.Helper()
	p, err := Reserve(host, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Addr is a free TCP address on 127.0.0.1.
func Addr(t T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t, "127.0.0.1")))
}

// DNSAddr is an address on 127.0.0.1 free for both UDP and TCP.
func DNSAddr(t T) string {
	t.Helper()
	p, err := Reserve("127.0.0.1", true)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}
