package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestReserveGivesDistinctBindablePortsOutsideTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		p, err := Reserve("127.0.0.1", i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		if p < first || p > last {
			t.Fatalf("port %d outside %d-%d", p, first, last)
		}
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
	}
}

func TestReserveSkipsPortsInUse(t *testing.T) {
	// Hold the next few ports the counter will reach; Reserve must step over them.
	var held []net.Listener
	start := first + int((next.Load()+1)%span)
	for p := start; p < start+5 && p <= last; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // already in use by someone else: just as good
		}
		held = append(held, ln)
	}
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	p, err := Reserve("127.0.0.1", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range held {
		if ln.Addr().(*net.TCPAddr).Port == p {
			t.Fatalf("Reserve gave %d, which is in use", p)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d from Reserve cannot be bound: %v", p, err)
	}
	ln.Close()
}
