package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/atollhq/atoll/events"
)

// heartbeat sends a heartbeat every interval until ctx ends or the master
// asks the agent to register again. A heartbeat that gets no answer (no
// master right now) is simply tried again at the next tick.
func (a *Agent) heartbeat(ctx context.Context) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	var statsSent time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Usage rides on a heartbeat now and then only: a heartbeat that
		// repeats the last costs the master a hash, one whose numbers
		// moved a decode and a comparison per task.
		withStats := time.Since(statsSent) >= a.cfg.StatisticsInterval
		if withStats {
			statsSent = time.Now()
		}
		reply, err := a.heartbeatOnce(ctx, withStats)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Debug("heartbeat failed", "err", err)
			}
			continue
		}
		if reply.Reregister {
			a.log.Info("master asks agent to register again", "id", a.ID())
			return
		}
	}
}

func (a *Agent) heartbeatOnce(ctx context.Context, withStats bool) (events.HeartbeatReply, error) {
	var reply events.HeartbeatReply
	tasks, mark := a.reportsWith(withStats)
	data, err := json.Marshal(events.Heartbeat{AgentID: a.ID(), Tasks: tasks, Launches: mark})
	if err != nil {
		return reply, err
	}
	// Short: a heartbeat that is late is worth less than the next one.
	timeout := min(max(a.cfg.HeartbeatInterval, 250*time.Millisecond), 2*time.Second)
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := a.cfg.NC.RequestWithContext(rctx, a.cfg.Subjects.Heartbeat(a.cfg.Hostname), data)
	if err != nil {
		return reply, err
	}
	if len(msg.Data) > 0 {
		err = json.Unmarshal(msg.Data, &reply)
	}
	return reply, err
}
