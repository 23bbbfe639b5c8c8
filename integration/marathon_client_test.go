package integration

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// Marathon's own Go client drives atoll as it drives Marathon: apps,
// versions and rollback, deployments, scaling, killing tasks, the launch
// queue's delay, events over SSE and leader abdication all succeed, and
// the cluster does what each call says. (TaskEndpoints is left out:
// go-marathon v0.7.1 dereferences container.docker for every app, so it
// panics inside the client on an app without a Docker container, on
// Marathon as here.)
func TestGoMarathonClient(t *testing.T) {
	c, _ := startHACluster(t, haOptions{masters: 2, agents: 2, session: 2 * time.Second})
	urls := make([]string, len(c.masterAddrs))
	for i, a := range c.masterAddrs {
		urls[i] = "http://" + a
	}
	// A client of its own: go-marathon's SSE subscription sets
	// CheckRedirect on its HTTP client, which would be http.DefaultClient,
	// shared with every other test's (a data race).
	client, err := marathon.NewClient(marathon.Config{URL: strings.Join(urls, ","),
		EventsTransport: marathon.EventsTransportSSE, HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	events, err := client.AddEventsListener(marathon.EventIDStatusUpdate | marathon.EventIDAPIRequest)
	if err != nil {
		t.Fatalf("events over SSE: %v", err)
	}
	defer client.RemoveEventsListener(events)

	const id = "/gm/echo"
	app := marathon.NewDockerApplication().Name(id).Command("atoll echo").CPU(0.1).Memory(16).Count(2)
	app.Container = nil
	app.AddEnv("GREETING", "v1")
	app.BackoffSeconds = floatp(0.2)
	if _, err := client.CreateApplication(app); err != nil {
		t.Fatalf("CreateApplication: %v", err)
	}
	if err := client.WaitOnApplication(id, 60*time.Second); err != nil {
		t.Fatalf("WaitOnApplication: %v", err)
	}
	// The SSE listener saw the app posted and its tasks running.
	sawPost, running := false, map[string]bool{}
	deadline := time.After(30 * time.Second)
	for !sawPost || len(running) < 2 {
		select {
		case e := <-events:
			switch ev := e.Event.(type) {
			case *marathon.EventAPIRequest:
				sawPost = sawPost || ev.AppDefinition.ID == id
			case *marathon.EventStatusUpdate:
				if ev.AppID == id && ev.TaskStatus == "TASK_RUNNING" {
					running[ev.TaskID] = true
				}
			}
		case <-deadline:
			t.Fatalf("events: api_post_event seen %v, running %v", sawPost, running)
		}
	}

	// A change is a new version; rolling back restores the first.
	v1, err := client.ApplicationVersions(id)
	if err != nil || len(v1.Versions) != 1 {
		t.Fatalf("ApplicationVersions: %v %v", v1, err)
	}
	changed := marathon.NewDockerApplication().Name(id)
	changed.Container = nil
	changed.AddEnv("GREETING", "v2")
	dep, err := client.UpdateApplication(changed, false)
	if err != nil {
		t.Fatalf("UpdateApplication: %v", err)
	}
	if err := client.WaitOnDeployment(dep.DeploymentID, 60*time.Second); err != nil {
		t.Fatalf("WaitOnDeployment (update): %v", err)
	}
	if vs, err := client.ApplicationVersions(id); err != nil || len(vs.Versions) != 2 {
		t.Fatalf("versions after update: %v %v", vs, err)
	}
	if old, err := client.ApplicationByVersion(id, v1.Versions[0]); err != nil || (*old.Env)["GREETING"] != "v1" {
		t.Fatalf("ApplicationByVersion: %+v %v", old, err)
	}
	dep, err = client.SetApplicationVersion(id, &marathon.ApplicationVersion{Version: v1.Versions[0]})
	if err != nil {
		t.Fatalf("SetApplicationVersion (rollback): %v", err)
	}
	if err := client.WaitOnDeployment(dep.DeploymentID, 60*time.Second); err != nil {
		t.Fatalf("WaitOnDeployment (rollback): %v", err)
	}
	rolled, err := client.Application(id)
	if err != nil || (*rolled.Env)["GREETING"] != "v1" {
		t.Fatalf("after rollback: %+v %v", rolled, err)
	}
	for _, task := range rolled.Tasks {
		if task.Version != rolled.Version {
			t.Errorf("task %s of version %s after the rollback, want %s", task.ID, task.Version, rolled.Version)
		}
	}

	// Scale, list deployments, kill with scale.
	if dep, err = client.ScaleApplicationInstances(id, 3, false); err != nil {
		t.Fatalf("ScaleApplicationInstances: %v", err)
	}
	if _, err := client.Deployments(); err != nil {
		t.Fatalf("Deployments: %v", err)
	}
	if err := client.WaitOnDeployment(dep.DeploymentID, 60*time.Second); err != nil {
		t.Fatalf("WaitOnDeployment (scale): %v", err)
	}
	tasks, err := client.Tasks(id)
	if err != nil || len(tasks.Tasks) != 3 {
		t.Fatalf("Tasks: %v %v", tasks, err)
	}
	victim := tasks.Tasks[0].ID
	if err := client.KillTasks([]string{victim}, &marathon.KillTaskOpts{Scale: true}); err != nil {
		t.Fatalf("KillTasks: %v", err)
	}
	c.waitFor(30*time.Second, "2 tasks, the victim gone", func() (bool, string) {
		ts, err := client.Tasks(id)
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, tk := range ts.Tasks {
			got = append(got, tk.ID)
		}
		return len(got) == 2 && !slices.Contains(got, victim), fmt.Sprint(got)
	})

	// An app that keeps failing sits in the queue with a delay; deleting
	// the delay launches it again at once.
	failing := marathon.NewDockerApplication().Name("/gm/failing").Command("exit 1").CPU(0.1).Memory(16).Count(1)
	failing.Container = nil
	failing.BackoffSeconds, failing.MaxLaunchDelaySeconds = floatp(3600), floatp(3600)
	if _, err := client.CreateApplication(failing); err != nil {
		t.Fatalf("CreateApplication (failing): %v", err)
	}
	c.waitFor(30*time.Second, "the failing app delayed in the queue", func() (bool, string) {
		q, err := client.Queue()
		if err != nil {
			return false, err.Error()
		}
		for _, item := range q.Items {
			if item.Application.ID == "/gm/failing" && item.Delay.TimeLeftSeconds > 0 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", q.Items)
	})
	if err := client.DeleteQueueDelay("/gm/failing"); err != nil {
		t.Fatalf("DeleteQueueDelay: %v", err)
	}
	if _, err := client.DeleteApplication("/gm/failing", true); err != nil {
		t.Fatalf("DeleteApplication: %v", err)
	}

	// The leader steps down; the other master leads, with the apps.
	before, err := client.Leader()
	if err != nil {
		t.Fatalf("Leader: %v", err)
	}
	if msg, err := client.AbdicateLeader(); err != nil || msg != "Leadership abdicated" {
		t.Fatalf("AbdicateLeader: %q %v", msg, err)
	}
	c.waitFor(20*time.Second, "another leader", func() (bool, string) {
		now, err := client.Leader()
		return err == nil && now != before, fmt.Sprint(now, err)
	})
	if err := client.WaitOnApplication(id, 30*time.Second); err != nil {
		t.Fatalf("the app after the abdication: %v", err)
	}
}

func floatp(f float64) *float64 { return &f }
