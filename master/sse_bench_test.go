package master

import (
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// BenchmarkSSEPublishTaskUpdate is what the SSE stream adds to each
// committed task update, on the committer: framing it as
// status_update_event and recording it in the replay ring.
func BenchmarkSSEPublishTaskUpdate(b *testing.B) {
	s := events.NewState()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	task := events.Task{
		ID: "web.5b20f56a-0086-431f-bb42-079e33613537", AppID: "/web", AgentID: "agent-S0",
		Host: "h1", IPAddresses: []events.IPAddress{{IPAddress: "10.0.0.9", Protocol: "IPv4"}},
		Ports: []int{31000}, State: events.TaskStaging, StagedAt: now, Version: now,
	}
	s.Tasks[task.ID] = task
	hub := newSSEHub(time.Now)
	running := task
	running.State = events.TaskRunning
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := events.Event{Epoch: 1, Seq: uint64(i + 1), Type: events.TaskUpdated, Time: now, ID: task.ID, Task: &running}
		hub.publish(e.Epoch, e.Seq, sseFrames(s, e))
	}
}
