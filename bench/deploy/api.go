package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// api is a client of the master's Marathon v2 API.
type api struct {
	base   string
	client *http.Client
}

func newAPI(base string) *api {
	return &api{base: base, client: &http.Client{Timeout: 10 * time.Second}}
}

// do sends body (JSON, if not nil) and decodes a 2xx answer into out (if
// not nil); any other status is an error with the answer's text.
func (a *api) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %.300s", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w: %.300s", method, path, err, data)
		}
	}
	return resp.StatusCode, nil
}

func (a *api) get(ctx context.Context, path string, out any) (int, error) {
	return a.do(ctx, http.MethodGet, path, nil, out)
}

// appView is the part of /v2/apps/{id} the benchmark reads.
type appView struct {
	ID           string `json:"id"`
	Version      string `json:"version"`
	Instances    int    `json:"instances"`
	TasksHealthy int    `json:"tasksHealthy"`
}

// taskView is the part of a task the benchmark reads.
type taskView struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Version string `json:"version"`
	Healthy *bool  `json:"healthy"`
}

// appState is an app, its tasks and the number of deployments running.
type appState struct {
	app         appView
	tasks       []taskView
	deployments int
}

func (a *api) state(ctx context.Context, id string) (appState, error) {
	var s appState
	var deps []json.RawMessage
	if _, err := a.get(ctx, "/v2/deployments", &deps); err != nil {
		return s, err
	}
	s.deployments = len(deps)
	var app struct {
		App appView `json:"app"`
	}
	if _, err := a.get(ctx, "/v2/apps"+id, &app); err != nil {
		return s, err
	}
	s.app = app.App
	var tasks struct {
		Tasks []taskView `json:"tasks"`
	}
	if _, err := a.get(ctx, "/v2/apps"+id+"/tasks", &tasks); err != nil {
		return s, err
	}
	s.tasks = tasks.Tasks
	return s, nil
}

// steady says whether no deployment runs and the app has exactly n tasks,
// all running and healthy, of version (the app's if "").
func (s appState) steady(n int, version string) (bool, string) {
	if version == "" {
		version = s.app.Version
	}
	good, old := 0, 0
	for _, t := range s.tasks {
		if t.Version != version {
			old++
			continue
		}
		if t.State == "TASK_RUNNING" && t.Healthy != nil && *t.Healthy {
			good++
		}
	}
	st := fmt.Sprintf("%d deployments, %d tasks: %d running healthy of version %s, %d of other versions", s.deployments, len(s.tasks), good, version, old)
	return s.deployments == 0 && len(s.tasks) == n && good == n, st
}

// waitFor polls cond every 50 ms until it holds, ctx ends or timeout.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, st, err := cond()
		if err != nil {
			last = err.Error()
		} else if ok {
			return nil
		} else {
			last = st
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s (last: %s)", what, timeout, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
