package master

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/atollhq/atoll/events"
)

// App embeds, as Marathon's InfoEmbedResolver takes them: ?embed= values
// with the prefix "apps." or "app." (or none): tasks, counts,
// deployments, readiness, lastTaskFailure, taskStats, and the deprecated
// failures (tasks and lastTaskFailure). Counts and deployments are always
// in atoll's app JSON, as /v2/apps has them by default; unknown values
// are ignored, as Marathon ignores them.

// appEmbeds is what an answer adds to each app's JSON.
type appEmbeds struct {
	tasks, lastTaskFailure, taskStats, readiness bool
}

// parseAppEmbeds reads ?embed=, starting from def.
func parseAppEmbeds(r *http.Request, def appEmbeds) appEmbeds {
	e := def
	for _, v := range r.URL.Query()["embed"] {
		v = strings.TrimPrefix(strings.TrimPrefix(v, "apps."), "app.")
		switch v {
		case "tasks":
			e.tasks = true
		case "failures":
			e.tasks, e.lastTaskFailure = true, true
		case "lastTaskFailure":
			e.lastTaskFailure = true
		case "taskStats":
			e.taskStats = true
		case "readiness":
			e.readiness = true
		}
	}
	return e
}

// embedsTasks reports whether ?embed= asks for the apps' (or app's) tasks.
func embedsTasks(r *http.Request) bool { return parseAppEmbeds(r, appEmbeds{}).tasks }

// extras encodes what emb adds to e's JSON beyond its tasks: its fields,
// each led by a comma. now is when task lifetimes end.
func (e *appEntry) extras(emb appEmbeds, now time.Time) ([]byte, error) {
	var out []byte
	add := func(name string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		out = append(out, `,"`+name+`":`...)
		out = append(out, data...)
		return nil
	}
	if emb.lastTaskFailure && e.failure != nil {
		if err := add("lastTaskFailure", taskFailureViewOf(*e.failure)); err != nil {
			return nil, err
		}
	}
	if emb.taskStats {
		if err := add("taskStats", taskStatsOf(*e.app, e.tasks.tasks, now)); err != nil {
			return nil, err
		}
	}
	if emb.readiness {
		if err := add("readinessCheckResults", readinessResults(*e.app, e.tasks.tasks)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// taskFailureView is Marathon's lastTaskFailure (Formats.TaskFailureWrites).
type taskFailureView struct {
	AppID     string   `json:"appId"`
	Host      string   `json:"host"`
	Message   string   `json:"message"`
	State     string   `json:"state"`
	TaskID    string   `json:"taskId"`
	Timestamp jsonTime `json:"timestamp"`
	Version   jsonTime `json:"version"`
	SlaveID   *string  `json:"slaveId"`
}

func taskFailureViewOf(f events.TaskFailure) taskFailureView {
	v := taskFailureView{
		AppID: f.Task.AppID, Host: f.Task.Host, Message: f.Task.Message, State: string(f.Task.State),
		TaskID: f.Task.ID, Timestamp: jsonTime(f.Timestamp), Version: jsonTime(f.Task.Version),
	}
	if f.Task.AgentID != "" {
		id := f.Task.AgentID
		v.SlaveID = &id
	}
	return v
}

// taskStatsView is Marathon's taskStats (Formats.TaskStatsByVersionWrites):
// each class is present only when it has tasks.
type taskStatsView struct {
	StartedAfterLastScaling *taskStatsOfClass `json:"startedAfterLastScaling,omitempty"`
	WithLatestConfig        *taskStatsOfClass `json:"withLatestConfig,omitempty"`
	WithOutdatedConfig      *taskStatsOfClass `json:"withOutdatedConfig,omitempty"`
	TotalSummary            *taskStatsOfClass `json:"totalSummary,omitempty"`
}

type taskStatsOfClass struct {
	Stats struct {
		Counts struct {
			Staged    int `json:"staged"`
			Running   int `json:"running"`
			Healthy   int `json:"healthy"`
			Unhealthy int `json:"unhealthy"`
		} `json:"counts"`
		LifeTime *struct {
			AverageSeconds float64 `json:"averageSeconds"`
			MedianSeconds  float64 `json:"medianSeconds"`
		} `json:"lifeTime,omitempty"`
	} `json:"stats"`
}

// taskStatsOf classes an app's tasks as Marathon's TaskStatsByVersion
// does: started after the app's last scaling, of its current config or
// of an older one, and all of them; lifetimes count from each task's
// start to now.
func taskStatsOf(a events.App, tasks []events.Task, now time.Time) taskStatsView {
	var after, latest, outdated, all []events.Task
	for _, t := range tasks {
		all = append(all, t)
		if t.StartedAt != nil && t.StartedAt.After(a.VersionInfo.LastScalingAt) {
			after = append(after, t)
		}
		if t.ConfigVersion.Equal(a.VersionInfo.LastConfigChangeAt) || t.Version.Equal(a.Version) {
			latest = append(latest, t)
		} else {
			outdated = append(outdated, t)
		}
	}
	return taskStatsView{
		StartedAfterLastScaling: classStats(after, now),
		WithLatestConfig:        classStats(latest, now),
		WithOutdatedConfig:      classStats(outdated, now),
		TotalSummary:            classStats(all, now),
	}
}

func classStats(tasks []events.Task, now time.Time) *taskStatsOfClass {
	if len(tasks) == 0 {
		return nil
	}
	var s taskStatsOfClass
	var c events.TaskCounts
	var lives []float64
	for _, t := range tasks {
		c.Count(t)
		if t.StartedAt != nil {
			lives = append(lives, now.Sub(*t.StartedAt).Seconds())
		}
	}
	s.Stats.Counts.Staged, s.Stats.Counts.Running = c.Staged, c.Running
	s.Stats.Counts.Healthy, s.Stats.Counts.Unhealthy = c.Healthy, c.Unhealthy
	if len(lives) > 0 {
		slices.Sort(lives)
		sum := 0.0
		for _, l := range lives {
			sum += l
		}
		median := lives[len(lives)/2]
		if len(lives)%2 == 0 {
			median = (lives[len(lives)/2-1] + lives[len(lives)/2]) / 2
		}
		s.Stats.LifeTime = &struct {
			AverageSeconds float64 `json:"averageSeconds"`
			MedianSeconds  float64 `json:"medianSeconds"`
		}{sum / float64(len(lives)), median}
	}
	return &s
}
