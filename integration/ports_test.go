package integration

import (
	"testing"

	"github.com/atollhq/atoll/internal/freeport"
)

// freeAddr is a free TCP address on 127.0.0.1 (see freeport for why not ":0").
func freeAddr(t *testing.T) string { return freeport.Addr(t) }

// freeDNSAddr is an address on 127.0.0.1 free for both UDP and TCP.
func freeDNSAddr(t *testing.T) string { return freeport.DNSAddr(t) }

// lbFreePort is a TCP port free on addr, for a service port or a frontend.
func lbFreePort(t *testing.T, addr string) int { return freeport.Port(t, addr) }
