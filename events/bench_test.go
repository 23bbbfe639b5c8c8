package events_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
)

// BenchmarkApplyTaskUpdate measures the cost of one task event on a state
// of 10,000 tasks: what every follower pays per event.
func BenchmarkApplyTaskUpdate(b *testing.B) {
	s := events.NewState()
	epoch := uint64(1)
	for i := 0; i < 10000; i++ {
		t := events.Task{ID: fmt.Sprintf("app_%d.%d", i%100, i), AppID: fmt.Sprintf("/app%d", i%100), State: events.TaskRunning}
		if err := s.Apply(events.PutTask(t).Stamp(s, epoch, time.Unix(0, 0))); err != nil {
			b.Fatal(err)
		}
	}
	t := events.Task{ID: "app_1.1", AppID: "/app1", State: events.TaskRunning}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(events.PutTask(t).Stamp(s, epoch, time.Unix(0, 0))); err != nil {
			b.Fatal(err)
		}
	}
}
