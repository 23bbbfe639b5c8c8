package lbsync

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/templates"
)

// bigState is n apps × 3 running tasks on 100 agents; every tenth app has
// a vhost.
func bigState(n int) *events.State {
	s := events.NewState()
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("agent-%03d", i)
		s.Agents[id] = events.Agent{ID: id, IP: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), State: events.AgentActive}
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("/team%d/app%05d", i%50, i)
		labels := map[string]string{"HAPROXY_GROUP": "external"}
		if i%10 == 0 {
			labels["HAPROXY_0_VHOST"] = fmt.Sprintf("app%05d.example", i)
		}
		s.Apps[id] = events.App{ID: id, Labels: labels, PortDefinitions: []events.PortDefinition{{Port: 10000 + i}}}
		for j := 0; j < 3; j++ {
			tid := fmt.Sprintf("%s.%d", id, j)
			s.Tasks[tid] = events.Task{ID: tid, AppID: id, AgentID: fmt.Sprintf("agent-%03d", (i+j)%100),
				State: events.TaskRunning, Ports: []int{20000 + j}}
		}
	}
	return s
}

func BenchmarkRender10k(b *testing.B) {
	s := bigState(10000)
	set := templates.MustDefault()
	prev, err := Render(s, Config{}, set)
	if err != nil {
		b.Fatal(err)
	}
	if len(prev.Errors) > 0 || len(prev.Backends) != 10000 {
		b.Fatalf("%d backends, errors %v", len(prev.Backends), prev.Errors[:1])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := RenderNext(&prev, s, Config{}, set)
		if err != nil {
			b.Fatal(err)
		}
		if p := Diff(&prev, &r); p.Reload || len(p.Commands) > 0 {
			b.Fatal("unchanged state gave a change")
		}
	}
}

func BenchmarkValidate10k(b *testing.B) {
	r, err := Render(bigState(10000), Config{}, templates.MustDefault())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := Validate(r.Config); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender10kCold renders without a previous Result: no cached
// app text, every template executed.
func BenchmarkRender10kCold(b *testing.B) {
	s := bigState(10000)
	set := templates.MustDefault()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Render(s, Config{}, set); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckWithHAProxy10k times the real `haproxy -c` on the 10,000
// app config (the reload path's check); it needs haproxy installed.
func BenchmarkCheckWithHAProxy10k(b *testing.B) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		b.Skip("haproxy not installed")
	}
	dir := b.TempDir()
	cfg := Config{MapPath: filepath.Join(dir, "hosts.map"), SocketPath: filepath.Join(dir, "admin.sock")}
	r, err := Render(bigState(10000), cfg, templates.MustDefault())
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	for p, text := range map[string]string{path: r.Config, cfg.MapPath: r.HostMap, cfg.MapPath + ".paths": r.PathMap} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := CheckWithHAProxy(context.Background(), bin, path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTaskMoved1k is the sidecar's work for one task moving to
// another agent at 1,000 apps: the render of the touched app, then the
// Diff the applier's commands come from.
func BenchmarkTaskMoved1k(b *testing.B) {
	s := bigState(1000)
	s.Reindex() // as a follower's state has it, from Apply
	set := templates.MustDefault()
	prev, err := Render(s, Config{}, set)
	if err != nil {
		b.Fatal(err)
	}
	const appID, taskID = "/team7/app00007", "/team7/app00007.0"
	touched := map[string]bool{appID: true}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := s.Tasks[taskID]
		t.AgentID = fmt.Sprintf("agent-%03d", 50+i%2)
		s.Tasks[taskID] = t
		b.StartTimer()
		r, ok := renderMembership(&prev, s, Config{}.withDefaults(), set, nil, touched)
		if !ok {
			b.Fatal("a task move took the full render")
		}
		p := Diff(&prev, &r)
		b.StopTimer()
		if p.Reload || len(p.Commands) != 2 {
			b.Fatalf("plan %+v", p)
		}
		prev = r
	}
}
