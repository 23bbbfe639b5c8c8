package master

import (
	"fmt"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// planState builds a state with one app of n instances and the given tasks,
// described as "<version>:<state>[:healthy|unhealthy]" with version old|new.
func planState(t *testing.T, n int, health bool, minHealth, maxOver float64, tasks ...string) (*events.State, events.App) {
	t.Helper()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	app := events.App{
		ID: "/a", Instances: n, Version: t1,
		VersionInfo:     events.VersionInfo{LastConfigChangeAt: t1, LastScalingAt: t1},
		UpgradeStrategy: events.UpgradeStrategy{MinimumHealthCapacity: minHealth, MaximumOverCapacity: maxOver},
	}
	if health {
		app.HealthChecks = []events.HealthCheck{{Protocol: "HTTP"}}
	}
	s := events.NewState()
	s.Apps[app.ID] = app
	s.Agents["ag"] = events.Agent{ID: "ag", Hostname: "h", State: events.AgentActive}
	for i, d := range tasks {
		var ver, state, h string
		fmt.Sscanf(d, "%s", &ver)
		parts := splitColon(d)
		ver, state = parts[0], parts[1]
		if len(parts) > 2 {
			h = parts[2]
		}
		task := events.Task{ID: fmt.Sprintf("a.%02d", i), AppID: "/a", AgentID: "ag", State: events.TaskState(state), Version: t0, StagedAt: t0}
		if ver == "new" {
			task.Version = t1
		}
		switch h {
		case "healthy":
			b := true
			task.Healthy = &b
		case "unhealthy":
			b := false
			task.Healthy = &b
		}
		s.Tasks[task.ID] = task
	}
	return s, app
}

func splitColon(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func TestPlanApp(t *testing.T) {
	R := "TASK_RUNNING"
	for _, tc := range []struct {
		name       string
		n          int
		health     bool
		min, over  float64
		tasks      []string
		wantLaunch int
		wantKill   int
		wantDone   bool
	}{
		{"fresh app launches all", 3, false, 1, 1, nil, 3, 0, false},
		{"converged", 2, false, 1, 1, []string{"new:" + R, "new:" + R}, 0, 0, true},
		{"staging is not done", 1, false, 1, 1, []string{"new:TASK_STAGING"}, 0, 0, false},
		{"scale down kills surplus", 1, false, 1, 1, []string{"new:" + R, "new:" + R, "new:" + R}, 0, 2, false},
		{"killing task holds the deployment", 1, false, 1, 1, []string{"new:" + R, "new:TASK_KILLING"}, 0, 0, false},
		{"unreachable is replaced", 2, false, 1, 1, []string{"new:" + R, "new:TASK_UNREACHABLE"}, 1, 0, false},
		{"health checks: unhealthy is not done", 1, true, 1, 1, []string{"new:" + R + ":unhealthy"}, 0, 0, false},
		{"rolling 1/1: start all new, kill none", 2, false, 1, 1, []string{"old:" + R, "old:" + R}, 2, 0, false},
		{"rolling 1/1: one new ready, one old goes", 2, false, 1, 1, []string{"old:" + R, "old:" + R, "new:" + R, "new:TASK_STAGING"}, 0, 1, false},
		{"rolling 1/1: all new ready, old all go", 2, false, 1, 1, []string{"old:" + R, "old:" + R, "new:" + R, "new:" + R}, 0, 2, false},
		{"rolling 0.5/0: half the old go first", 4, false, 0.5, 0, []string{"old:" + R, "old:" + R, "old:" + R, "old:" + R}, 2, 2, false},
		{"rolling 1/0: one old goes to make room", 2, false, 1, 0, []string{"old:" + R, "old:" + R}, 0, 1, false},
		{"rolling 1/0: replacement staging, no more kills", 2, false, 1, 0, []string{"old:" + R, "new:TASK_STAGING"}, 0, 0, false},
		{"rolling: unready old go at once", 2, true, 1, 1, []string{"old:" + R + ":unhealthy", "old:" + R + ":healthy"}, 2, 1, false},
		{"rolling: new not healthy keeps old", 2, true, 1, 1, []string{"old:" + R + ":healthy", "old:" + R + ":healthy", "new:" + R + ":unhealthy", "new:" + R}, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, app := planState(t, tc.n, tc.health, tc.min, tc.over, tc.tasks...)
			p := planApp(s, app, time.Time{})
			if p.Launch != tc.wantLaunch || len(p.Kill) != tc.wantKill || p.Done != tc.wantDone {
				t.Fatalf("plan = launch %d, kill %v, done %v; want launch %d, kill %d, done %v",
					p.Launch, p.Kill, p.Done, tc.wantLaunch, tc.wantKill, tc.wantDone)
			}
		})
	}
}

func TestDelayFor(t *testing.T) {
	app := events.App{BackoffSeconds: 1, BackoffFactor: 2, MaxLaunchDelaySeconds: 5}
	for failures, want := range map[int]time.Duration{0: 0, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 9: 5 * time.Second} {
		if got := delayFor(app, failures); got != want {
			t.Errorf("delayFor(%d) = %s, want %s", failures, got, want)
		}
	}
}

// With a readiness check, a new task takes over only once its agent says
// it is ready: the old one stays until then, and the step is not done;
// old tasks are not held to a check that came after them.
func TestPlanWaitsForReadiness(t *testing.T) {
	s, app := planState(t, 1, false, 1, 1, "old:TASK_RUNNING", "new:TASK_RUNNING")
	app.ReadinessChecks = []events.ReadinessCheck{{Name: "r", Protocol: "HTTP", Path: "/ready", PortName: "http"}}
	s.Apps[app.ID] = app
	s.Reindex()
	if p := planApp(s, app, time.Time{}); len(p.Kill) != 0 || p.Done {
		t.Fatalf("before the new task is ready: kill %v done %v, want the old task kept", p.Kill, p.Done)
	}
	ready := true
	nt := s.Tasks["a.01"]
	nt.Ready = &ready
	s.Tasks["a.01"] = nt
	s.Reindex()
	if p := planApp(s, app, time.Time{}); len(p.Kill) != 1 || p.Kill[0] != "a.00" {
		t.Fatalf("once ready: kill %v, want the old task a.00", p.Kill)
	}
	delete(s.Tasks, "a.00")
	s.Reindex()
	if p := planApp(s, app, time.Time{}); !p.Done {
		t.Fatalf("the ready new task alone: not done")
	}
}
