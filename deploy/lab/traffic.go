package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// traffic is the chaos client: from the client host it keeps asking the
// region-1 sidecar's DNS for the app's name and keeps fetching the app
// through that sidecar's HAProxy, recording every outcome.
type traffic struct {
	a       *api
	dnsName string // web.chaos.marathon.mesos
	server  string // the sidecar's IP
	httpURL string // http://sidecar:servicePort/
	hc      *http.Client

	mu      sync.Mutex
	samples []sample
	// dead are the addresses a scenario has taken away: a DNS answer
	// naming one sends clients to a host that cannot answer.
	dead map[string]bool
}

type sample struct {
	at   time.Time
	dns  bool // else http
	ok   bool
	what string // the error, for the first failures' log
	took time.Duration
	// stale: a DNS answer that named a dead address (not an error: the
	// other addresses may serve).
	stale bool
}

// trafficInterval is the pause between two requests of one kind.
const trafficInterval = 100 * time.Millisecond

func newTraffic(a *api, dnsName, server string, servicePort int) *traffic {
	return &traffic{
		a: a, dnsName: dnsName, server: server,
		httpURL: fmt.Sprintf("http://%s:%d/", server, servicePort),
		// A fresh connection per request, as new clients arrive; HAProxy's
		// own connect timeout and retries (3 s, 3) fit inside 10 s.
		hc: httpClient(clientHost.NS(), 10*time.Second, false),
	}
}

// run sends DNS and HTTP requests until ctx ends.
func (t *traffic) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); t.loop(ctx, true, t.dnsOnce) }()
	go func() { defer wg.Done(); t.loop(ctx, false, t.httpOnce) }()
	wg.Wait()
}

// setDead says which addresses are gone (nil: none).
func (t *traffic) setDead(ips ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dead = map[string]bool{}
	for _, ip := range ips {
		t.dead[ip] = true
	}
}

func (t *traffic) loop(ctx context.Context, isDNS bool, once func() (bool, error)) {
	for ctx.Err() == nil {
		start := time.Now()
		stale, err := once()
		s := sample{at: time.Now(), dns: isDNS, ok: err == nil, took: time.Since(start), stale: stale}
		if err != nil {
			s.what = err.Error()
		}
		t.mu.Lock()
		t.samples = append(t.samples, s)
		t.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(trafficInterval):
		}
	}
}

// dnsOnce wants at least one A record for the app's name, and says
// whether the answer named a dead address.
func (t *traffic) dnsOnce() (bool, error) {
	ips, rcode, err := t.a.lookup(t.server, t.dnsName, 2*time.Second)
	switch {
	case err != nil:
		return false, fmt.Errorf("dns: %w", err)
	case rcode != dns.RcodeSuccess:
		return false, fmt.Errorf("dns: %s", dns.RcodeToString[rcode])
	case len(ips) == 0:
		return false, fmt.Errorf("dns: no A records")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ip := range ips {
		if t.dead[ip] {
			return true, nil
		}
	}
	return false, nil
}

// httpOnce wants a 200 from a task through HAProxy.
func (t *traffic) httpOnce() (bool, error) {
	resp, err := t.hc.Get(t.httpURL)
	if err != nil {
		return false, fmt.Errorf("http: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("http: %s", resp.Status)
	}
	return false, nil
}

// counts are the outcomes between two instants.
type counts struct {
	dnsTotal, dnsErr, httpTotal, httpErr int
	firstErrs                            []string
	lastErr                              time.Time
	// slowest answers, errors included: a stall shows here when
	// retries hide it from the error counts.
	dnsMax, httpMax time.Duration
	// dnsStale counts answers that named a dead address, and
	// staleFor is how long after the first such answer the last came.
	dnsStale int
	staleFor time.Duration
}

func (t *traffic) between(from, to time.Time) counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	var c counts
	seen := map[string]bool{}
	var firstStale time.Time
	for _, s := range t.samples {
		if s.at.Before(from) || s.at.After(to) {
			continue
		}
		if s.stale {
			c.dnsStale++
			if firstStale.IsZero() {
				firstStale = s.at
			}
			c.staleFor = s.at.Sub(firstStale)
		}
		if s.dns {
			c.dnsTotal++
			c.dnsMax = max(c.dnsMax, s.took)
		} else {
			c.httpTotal++
			c.httpMax = max(c.httpMax, s.took)
		}
		if s.ok {
			continue
		}
		if s.dns {
			c.dnsErr++
		} else {
			c.httpErr++
		}
		c.lastErr = s.at
		if !seen[s.what] && len(c.firstErrs) < 4 {
			seen[s.what] = true
			c.firstErrs = append(c.firstErrs, s.what)
		}
	}
	return c
}
