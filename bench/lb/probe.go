package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// prober asks HAProxy's service ports which backend answers. With
// keepAlive it reuses connections (cheap polling; HAProxy balances each
// request in HTTP mode); without, every request is a new connection, so a
// reload's new worker is seen at once.
type prober struct {
	client *http.Client
	every  time.Duration // pause between polling rounds
}

func newProber(every time.Duration, keepAlive bool) *prober {
	return &prober{
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 2}},
		every:  every,
	}
}

// get does one GET on 127.0.0.1:port and returns the backend id that
// answered.
func (p *prober) get(ctx context.Context, port int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/", nil)
	if err != nil {
		return "", err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(body), nil
}

// waitFor polls port until a response comes from one of want, and returns
// when it did. A round is `round` requests in a row (roundrobin visits
// every server of the backend in one round), then a pause of p.every.
func (p *prober) waitFor(ctx context.Context, port int, want map[string]bool, round int, deadline time.Time) (time.Time, error) {
	var lastErr error
	seen := map[string]int{}
	for {
		for r := 0; r < round; r++ {
			id, err := p.get(ctx, port)
			now := time.Now()
			if err == nil && want[id] {
				return now, nil
			}
			lastErr = err
			if err == nil {
				seen[id]++
			}
			if err != nil {
				break // nothing listens yet, or an error: wait a little
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("port %d: no answer from %v by the deadline (answers %v, last error %v)", port, keys(want), seen, lastErr)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(p.every):
		}
	}
}

// served returns the backend ids seen in n requests on port.
func (p *prober) served(ctx context.Context, port, n int) (map[string]int, error) {
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		id, err := p.get(ctx, port)
		if err != nil {
			return seen, fmt.Errorf("port %d: %w", port, err)
		}
		seen[id]++
	}
	return seen, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
