package master

import (
	"net/http"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// An app's last task failure is in GET /v2/apps/{id} (always, as
// Marathon) and in GET /v2/apps with embed=apps.lastTaskFailure; taskStats
// and readiness embeds answer in Marathon's shapes; the failure survives
// the app's other changes and goes with the app.
func TestAppEmbeds(t *testing.T) {
	m, h, agent := withTasks(t)
	if res := call(t, h, "GET", "/v2/apps/web", ""); res.status != http.StatusOK {
		t.Fatal(res.status)
	} else if _, ok := at(t, res.json(t), "app").(map[string]any)["lastTaskFailure"]; ok {
		t.Fatalf("lastTaskFailure before any failure: %s", res.body)
	}
	failed := eventstest.Task("web.1", "/web", agent.ID, events.TaskFailed)
	failed.Message = "Memory limit exceeded: Requested: 32MB Maximum Used: 32MB"
	if err := m.commit(events.PutTask(failed)); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/v2/apps/web", "/v2/apps?embed=apps.lastTaskFailure", "/v2/apps?embed=app.failures"} {
		doc := call(t, h, "GET", target, "").json(t)
		var app any
		if _, ok := doc["app"]; ok {
			app = doc["app"]
		} else {
			app = at(t, doc, "apps", 0)
		}
		f, ok := app.(map[string]any)["lastTaskFailure"].(map[string]any)
		if !ok {
			t.Fatalf("%s: no lastTaskFailure in %v", target, app)
		}
		if f["taskId"] != "web.1" || f["state"] != "TASK_FAILED" || f["message"] != failed.Message ||
			f["appId"] != "/web" || f["slaveId"] != agent.ID || f["host"] != failed.Host || f["timestamp"] == nil || f["version"] == nil {
			t.Errorf("%s: lastTaskFailure = %v", target, f)
		}
	}
	if _, ok := at(t, call(t, h, "GET", "/v2/apps", "").json(t), "apps", 0).(map[string]any)["lastTaskFailure"]; ok {
		t.Errorf("GET /v2/apps embeds lastTaskFailure unasked")
	}

	doc := call(t, h, "GET", "/v2/apps?embed=apps.taskStats&embed=apps.readiness", "").json(t)
	if n := at(t, doc, "apps", 0, "taskStats", "totalSummary", "stats", "counts", "running"); n != 1.0 {
		t.Errorf("taskStats.totalSummary running = %v, want 1: %v", n, at(t, doc, "apps", 0, "taskStats"))
	}
	if at(t, doc, "apps", 0, "taskStats", "totalSummary", "stats", "lifeTime", "averageSeconds") == nil {
		t.Errorf("taskStats without lifetimes for a started task: %v", at(t, doc, "apps", 0, "taskStats"))
	}
	if r, ok := at(t, doc, "apps", 0, "readinessCheckResults").([]any); !ok || len(r) != 0 {
		t.Errorf("readinessCheckResults = %v, want []", at(t, doc, "apps", 0, "readinessCheckResults"))
	}

	// The failure goes with the app.
	if res := call(t, h, "DELETE", "/v2/apps/web", ""); res.status != http.StatusOK {
		t.Fatal(res.status, string(res.body))
	}
	if res := call(t, h, "POST", "/v2/apps", webApp); res.status != http.StatusCreated {
		t.Fatal(res.status)
	}
	if _, ok := at(t, call(t, h, "GET", "/v2/apps/web", "").json(t), "app").(map[string]any)["lastTaskFailure"]; ok {
		t.Errorf("a new app of the same id has the old one's last failure")
	}
}
