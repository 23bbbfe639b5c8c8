package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// wrkResult is what one wrk run printed.
type wrkResult struct {
	requests                      int64
	non2xx                        int64
	connect, read, write, timeout int64 // wrk's socket errors
	rps                           float64
	p50, p99, max                 string // as wrk prints them
	ran                           string // "... requests in 9.01s"
	raw                           string
}

func (r wrkResult) socket() int64 { return r.connect + r.read + r.write + r.timeout }
func (r wrkResult) failed() int64 { return r.non2xx + r.socket() }

var (
	reRequests = regexp.MustCompile(`(\d+) requests in ([0-9.]+\w+)`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	reSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reP50      = regexp.MustCompile(`(?m)^\s+50%\s+(\S+)`)
	reP99      = regexp.MustCompile(`(?m)^\s+99%\s+(\S+)`)
	reMax      = regexp.MustCompile(`(?m)^\s+Latency\s+\S+\s+\S+\s+(\S+)`)
)

// wrkRun is a wrk running in the background until stop.
type wrkRun struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// startWrk runs `wrk -t<threads> -c<conns> -d<limit> --latency url`; stop
// ends it early with SIGINT, after which wrk prints its figures as usual.
func startWrk(ctx context.Context, url string, threads, conns int, limit time.Duration) (*wrkRun, error) {
	w := &wrkRun{done: make(chan struct{})}
	secs := int((limit + time.Second - 1) / time.Second)
	w.cmd = exec.CommandContext(ctx, "wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(secs)+"s", "--latency", url)
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start wrk: %w", err)
	}
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	return w, nil
}

// stop interrupts wrk (if still running) and parses what it printed.
func (w *wrkRun) stop() (wrkResult, error) {
	select {
	case <-w.done:
	default:
		_ = w.cmd.Process.Signal(os.Interrupt)
		select {
		case <-w.done:
		case <-time.After(10 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.done
			return wrkResult{raw: w.out.String()}, fmt.Errorf("wrk did not stop on SIGINT: %s", w.out.String())
		}
	}
	if w.err != nil {
		return wrkResult{raw: w.out.String()}, fmt.Errorf("wrk: %w: %s", w.err, w.out.String())
	}
	return parseWrk(w.out.String())
}

func parseWrk(s string) (wrkResult, error) {
	r := wrkResult{raw: s}
	m := reRequests.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("wrk printed no request count:\n%s", s)
	}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.ran = m[2]
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		r.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reSocket.FindStringSubmatch(s); m != nil {
		for i, p := range []*int64{&r.connect, &r.read, &r.write, &r.timeout} {
			*p, _ = strconv.ParseInt(m[i+1], 10, 64)
		}
	}
	if m := reRPS.FindStringSubmatch(s); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, f := range []struct {
		re  *regexp.Regexp
		out *string
	}{{reP50, &r.p50}, {reP99, &r.p99}, {reMax, &r.max}} {
		if m := f.re.FindStringSubmatch(s); m != nil {
			*f.out = m[1]
		}
	}
	return r, nil
}
