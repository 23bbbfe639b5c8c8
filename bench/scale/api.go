package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// api is a client of the master's HTTP API with its credentials.
type api struct {
	base, user, pass string
	client           *http.Client
}

// call sends body (JSON, if not nil) and returns the answer's size and how
// long the call took; any answer but 2xx is an error with its text.
func (a *api) call(ctx context.Context, method, path string, body any) (int, time.Duration, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, 0, nil, err
	}
	req.SetBasicAuth(a.user, a.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, time.Since(start), nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return 0, took, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return len(data), took, data, fmt.Errorf("%s %s: %s: %.300s", method, path, resp.Status, data)
	}
	return len(data), took, data, nil
}

// metrics are the master's own figures the report shows, from /metrics.
type metrics struct {
	tasks          map[string]float64 // atoll_master_tasks by state
	wanted         float64            // atoll_master_instances_wanted
	deployments    float64
	reconcileSum   float64
	reconcileCount float64
	launches       float64
	kills          float64
	failures       float64
	agents         map[string]float64
	// unknownKills and lostFromReports are what a master too slow for
	// its agents churns through: kills of tasks an agent reports that
	// the master does not hold, tasks lost because a report lacked them.
	unknownKills    float64
	lostFromReports float64
	// commitSum and commitCount are the store writes and their time
	// (first change → stored and published); commitEvents, their events.
	commitSum, commitCount, commitEvents float64
}

func (a *api) metrics(ctx context.Context) (metrics, error) {
	m := metrics{tasks: map[string]float64{}, agents: map[string]float64{}}
	_, _, data, err := a.call(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return m, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, `atoll_master_tasks{state="`):
			m.tasks[strings.TrimSuffix(strings.TrimPrefix(name, `atoll_master_tasks{state="`), `"}`)] = v
		case strings.HasPrefix(name, `atoll_master_agents{state="`):
			m.agents[strings.TrimSuffix(strings.TrimPrefix(name, `atoll_master_agents{state="`), `"}`)] = v
		case name == "atoll_master_instances_wanted":
			m.wanted = v
		case name == "atoll_master_deployments":
			m.deployments = v
		case name == "atoll_master_reconcile_seconds_sum":
			m.reconcileSum = v
		case name == "atoll_master_reconcile_seconds_count":
			m.reconcileCount = v
		case name == "atoll_master_task_launches_total":
			m.launches = v
		case name == "atoll_master_task_kills_total":
			m.kills = v
		case name == "atoll_master_task_failures_total":
			m.failures = v
		case name == "atoll_master_unknown_task_kills_total":
			m.unknownKills = v
		case name == "atoll_master_tasks_lost_from_reports_total":
			m.lostFromReports = v
		case name == "atoll_master_commit_seconds_sum":
			m.commitSum = v
		case name == "atoll_master_commit_seconds_count":
			m.commitCount = v
		case name == "atoll_master_commit_batch_events_sum":
			m.commitEvents = v
		}
	}
	return m, sc.Err()
}

// rssMB is the process's resident set (VmRSS) in MB.
func rssMB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS", pid)
}
