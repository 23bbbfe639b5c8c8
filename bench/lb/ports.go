package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/atollhq/atoll/internal/freeport"
)

// freePort is a free loopback port for HAProxy's stats and :80 frontends.
func freePort() (int, error) { return freeport.Reserve("127.0.0.1", false) }

// servicePorts returns n loopback ports from base upwards that nothing
// listens on. They sit below the kernel's ephemeral range (32768+ on
// Linux), so no outgoing connection of the benchmark takes one before
// HAProxy binds it.
func servicePorts(base, n int) ([]int, error) {
	out := make([]int, 0, n)
	for p := base; len(out) < n; p++ {
		if p > 65535 {
			return nil, fmt.Errorf("service ports: only %d free from %d", len(out), base)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		out = append(out, p)
	}
	return out, nil
}
