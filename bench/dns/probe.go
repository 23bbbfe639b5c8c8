package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/miekg/dns"

	"github.com/atollhq/atoll/bench/internal/leader"
	"github.com/atollhq/atoll/events"
)

// countA asks the server for name's A records over UDP.
func countA(c *dns.Client, server, name string) (int, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return -1, err
	}
	return len(r.Answer), nil
}

// waitA polls until name has want A records or the deadline passes, and
// returns when it saw them.
func waitA(c *dns.Client, server, name string, want int, deadline time.Time) (time.Time, error) {
	for {
		n, err := countA(c, server, name)
		now := time.Now()
		if err == nil && n == want {
			return now, nil
		}
		if now.After(deadline) {
			return now, fmt.Errorf("%s: %d A records (err %v), want %d", name, n, err, want)
		}
	}
}

// propagation measures event published -> answer changed, over changes
// that remove a task and bring it back, alternately.
func propagation(l *leader.Leader, server string, apps, tasksPerApp, changes int) ([]time.Duration, error) {
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	var lat []time.Duration
	for i := 0; i < changes; i++ {
		app := (i / 2 * 7919) % apps
		state, want := events.TaskKilled, tasksPerApp-1
		if i%2 == 1 {
			state, want = events.TaskRunning, tasksPerApp
		}
		start := time.Now()
		if err := l.Commit(events.PutTask(benchTask(app, 0, state))); err != nil {
			return nil, err
		}
		seen, err := waitA(c, server, taskName(app)+".marathon.mesos", want, start.Add(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
		lat = append(lat, seen.Sub(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, nil
}
