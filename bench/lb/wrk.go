package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// wrkResult is what one wrk run printed.
type wrkResult struct {
	requests int64
	non2xx   int64
	socket   int64 // connect + read + write + timeout errors
	rps      float64
	p99      string // wrk's own latency p99, as printed
	raw      string
}

func (r wrkResult) failed() int64 { return r.non2xx + r.socket }

var (
	reRequests = regexp.MustCompile(`(\d+) requests in `)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	reSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reP99      = regexp.MustCompile(`(?m)^\s+99%\s+(\S+)`)
)

// startWrk runs `wrk -t2 -c32 -d<d> --latency url` in the background; wait
// returns its parsed output.
func startWrk(ctx context.Context, bin, url string, threads, conns int, d time.Duration) (wait func() (wrkResult, error), err error) {
	secs := int((d + time.Second - 1) / time.Second)
	cmd := exec.CommandContext(ctx, bin, "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", "--latency", url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start wrk: %w", err)
	}
	return func() (wrkResult, error) {
		if err := cmd.Wait(); err != nil {
			return wrkResult{raw: out.String()}, fmt.Errorf("wrk: %w: %s", err, out.String())
		}
		return parseWrk(out.String())
	}, nil
}

func parseWrk(s string) (wrkResult, error) {
	r := wrkResult{raw: s}
	m := reRequests.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("wrk printed no request count:\n%s", s)
	}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		r.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reSocket.FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.socket += n
		}
	}
	if m := reRPS.FindStringSubmatch(s); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reP99.FindStringSubmatch(s); m != nil {
		r.p99 = m[1]
	}
	return r, nil
}
