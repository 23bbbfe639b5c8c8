package scheduler

import (
	"reflect"
	"testing"

	"github.com/atollhq/atoll/events"
)

func TestSelectKills(t *testing.T) {
	tests := []struct {
		name   string
		agents []events.Agent
		tasks  []events.Task
		app    events.App
		n      int
		want   []string
	}{
		{
			name:   "not running, then unhealthy, then most recently staged",
			agents: racks,
			tasks: []events.Task{
				task("old", "/web", "a", 0),
				task("new", "/web", "b", 5),
				withState(task("staging", "/web", "c", 1), events.TaskStaging),
				withState(task("starting", "/web", "c", 2), events.TaskStarting),
				withHealth(task("sick", "/web", "a", 3), false),
				withHealth(task("well", "/web", "b", 4), true),
			},
			app:  app("/web"),
			n:    6,
			want: []string{"starting", "staging", "sick", "new", "well", "old"},
		},
		{
			name:   "killSelection OLDEST_FIRST: not running, then unhealthy, then least recently staged",
			agents: racks,
			tasks: []events.Task{
				task("old", "/web", "a", 0),
				task("new", "/web", "b", 5),
				withState(task("staging", "/web", "c", 1), events.TaskStaging),
				withHealth(task("sick", "/web", "a", 3), false),
				withHealth(task("well", "/web", "b", 4), true),
			},
			app: func() events.App {
				a := app("/web")
				a.KillSelection = events.KillOldestFirst
				return a
			}(),
			n:    4,
			want: []string{"staging", "sick", "old", "well"},
		},
		{
			name:   "same staging time: by id",
			agents: racks,
			tasks:  []events.Task{task("t2", "/web", "a", 0), task("t1", "/web", "b", 0)},
			app:    app("/web"),
			n:      1,
			want:   []string{"t1"},
		},
		{
			// t2 and t3 share host-a; killing t3 (newer) fixes it, after
			// which t4 is simply the newest.
			name:   "unique: one of two sharing a host, then newest",
			agents: racks,
			tasks: []events.Task{
				task("t1", "/web", "b", 0),
				task("t2", "/web", "a", 1),
				task("t3", "/web", "a", 2),
				task("t4", "/web", "c", 3),
			},
			app:  app("/web", []string{"hostname", "UNIQUE"}),
			n:    2,
			want: []string{"t3", "t4"},
		},
		{
			name:   "cluster value: the task off the cluster goes first",
			agents: racks,
			tasks:  []events.Task{task("off", "/web", "c", 0), task("on", "/web", "a", 1)},
			app:    app("/web", []string{"rack", "CLUSTER", "r1"}),
			n:      1,
			want:   []string{"off"},
		},
		{
			name:   "cluster without value: the minority goes first",
			agents: racks,
			tasks: []events.Task{
				task("t1", "/web", "c", 0),
				task("t2", "/web", "a", 1),
				task("t3", "/web", "b", 2),
			},
			app:  app("/web", []string{"rack", "CLUSTER"}),
			n:    1,
			want: []string{"t1"},
		},
		{
			name:   "group by: from the fullest group",
			agents: racks,
			tasks: []events.Task{
				task("t1", "/web", "a", 0),
				task("t2", "/web", "b", 1),
				task("t3", "/web", "c", 2),
			},
			app:  app("/web", []string{"rack", "GROUP_BY"}),
			n:    1,
			want: []string{"t2"},
		},
		{
			name:   "max per",
			agents: racks,
			tasks: []events.Task{
				task("t1", "/web", "a", 0),
				task("t2", "/web", "a", 1),
				task("t3", "/web", "b", 2),
			},
			app:  app("/web", []string{"hostname", "MAX_PER", "1"}),
			n:    1,
			want: []string{"t2"},
		},
		{
			name:   "like: a task on an agent lacking the attribute",
			agents: append(agents(agent("d")), racks...),
			tasks:  []events.Task{task("t1", "/web", "d", 0), task("t2", "/web", "a", 1)},
			app:    app("/web", []string{"rack", "LIKE", "r.*"}),
			n:      1,
			want:   []string{"t1"},
		},
		{
			name:   "a task whose agent is gone lacks every attribute",
			agents: racks,
			tasks:  []events.Task{task("t1", "/web", "gone", 0), task("t2", "/web", "a", 1)},
			app:    app("/web", []string{"rack", "IS", "r1"}),
			n:      1,
			want:   []string{"t1"},
		},
		{
			name:   "unlike",
			agents: racks,
			tasks:  []events.Task{task("t1", "/web", "c", 0), task("t2", "/web", "a", 1)},
			app:    app("/web", []string{"rack", "UNLIKE", "r2"}),
			n:      1,
			want:   []string{"t1"},
		},
		{
			name:   "is",
			agents: racks,
			tasks:  []events.Task{task("t1", "/web", "c", 0), task("t2", "/web", "a", 1)},
			app:    app("/web", []string{"rack", "IS", "r1"}),
			n:      1,
			want:   []string{"t1"},
		},
		{
			name:   "invalid constraints are skipped, valid ones still count",
			agents: racks,
			tasks:  []events.Task{task("t1", "/web", "c", 0), task("t2", "/web", "a", 1)},
			app:    app("/web", []string{"rack", "BOGUS"}, []string{"rack", "IS", "r1"}),
			n:      1,
			want:   []string{"t1"},
		},
		{
			name:   "only live tasks of this app, at most all of them",
			agents: racks,
			tasks: []events.Task{
				task("t1", "/web", "a", 0),
				withState(task("killing", "/web", "a", 1), events.TaskKilling),
				withState(task("lost", "/web", "b", 2), events.TaskUnreachable),
				task("other", "/other", "c", 3),
			},
			app:  app("/web"),
			n:    3,
			want: []string{"t1"},
		},
		{
			name:   "none",
			agents: racks,
			tasks:  []events.Task{task("t1", "/web", "a", 0)},
			app:    app("/web"),
			n:      0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SelectKills(cluster(tt.agents, tt.tasks...), tt.app, tt.n)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("kills %v, want %v", got, tt.want)
			}
		})
	}
}
