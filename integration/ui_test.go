package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// uiWait bounds each wait on the page: tasks start within a second or two,
// but the machine may be busy.
const uiWait = 30 * time.Second

// uiUser and uiPass are the API credentials of the UI tests' atoll dev.
const uiUser, uiPass = "ui", "ui-s3cret"

// startDevForUI runs `atoll dev` (no demo, no HAProxy) on free ports with
// API credentials from a file, and waits for its three agents; the cluster
// value is only its API client (with the credentials in its URL). ui is
// the API's address for the browser, without them.
func startDevForUI(t *testing.T) (c *cluster, ui string) {
	t.Helper()
	dir := passableTempDir(t)
	httpAddr := freeAddr(t)
	creds := filepath.Join(dir, "api-credentials")
	if err := os.WriteFile(creds, []byte(uiUser+":"+uiPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runDev(t, dir, "--lb=false", "--http", httpAddr, "--nats", freeAddr(t), "--dns", freeDNSAddr(t), "--dns-http", freeAddr(t),
		"--http-credentials-file", creds)
	c = &cluster{t: t, dir: dir, api: "http://" + uiUser + ":" + uiPass + "@" + httpAddr}
	c.waitFor(30*time.Second, "atoll dev with 3 active agents", func() (bool, string) {
		n := c.activeAgents()
		return n == 3, fmt.Sprintf("%d active", n)
	})
	return c, "http://" + httpAddr
}

// rowsJS lists the data-* value of a table's body rows.
func rowsJS(table, attr string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('[data-testid=%q] tbody tr[data-%s]')].map(r => r.dataset[%q])`,
		table, attr, dataKey(attr))
}

// dataKey is the dataset name of a data-* attribute: "task-id" -> "taskId".
func dataKey(attr string) string {
	parts := strings.Split(attr, "-")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

// runningTasksJS is true when the app page lists exactly n tasks, all
// running.
func runningTasksJS(n int) string {
	return fmt.Sprintf(`(() => { const s = %s; return s.length === %d && s.every(x => x === 'TASK_RUNNING'); })()`, rowsJS("tasks-table", "state"), n)
}

// TestUI drives the web UI in Chromium against a real `atoll dev` with API
// credentials: one cluster and one page for the whole story, in order. The
// browser asks for the credentials once, when the UI is opened (the test
// answers the prompt as a person would), and sends them on every fetch and
// on the event stream from then on. The page is never reloaded: everything
// it shows after the first load comes from the event stream.
func TestUI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts atoll dev and Chromium")
	}
	b := newBrowser(t)
	c, ui := startDevForUI(t)
	b.answerAuth(uiUser, uiPass)

	b.do(uiWait, "open the UI", chromedp.Navigate(ui+"/ui"))
	b.waitJS(uiWait, "the event stream to be live", `document.querySelector('[data-testid=stream-status]').textContent === 'live'`)
	askedOnce := func() {
		t.Helper()
		if p := b.authPrompts(); len(p) != 1 || p[0] != ui+"/ui" {
			t.Errorf("the browser asked for credentials for %q; want once, for %s/ui", p, ui)
		}
	}
	askedOnce()
	// A marker that a reload would wipe out.
	eval[bool](b, `window.__sameDocument = true`)
	stillSameDocument := func() {
		t.Helper()
		if !eval[bool](b, `window.__sameDocument === true`) {
			t.Fatal("the page was reloaded")
		}
	}

	// Each step runs as a subtest that the helpers fail; a failed step
	// stops the story, since the next ones build on it.
	parent := t
	step := func(name string, fn func(t *testing.T)) {
		ok := parent.Run(name, func(t *testing.T) {
			b.t, c.t = t, t
			defer func() { b.t, c.t = parent, parent }()
			fn(t)
		})
		if !ok {
			parent.FailNow()
		}
	}

	step("AgentsTableShowsRegions", func(t *testing.T) {
		b.waitJS(uiWait, "the 3 dev agents with their regions", `(() => {
			const rows = [...document.querySelectorAll('[data-testid=agents-table] tbody tr')];
			return rows.map(r => r.cells[1].textContent + '=' + r.cells[3].textContent + '=' + r.cells[9].textContent).sort().join(',')
				=== 'agent-1=r1=active,agent-2=r2=active,agent-3=r3=active';
		})()`)
		if hb := eval[string](b, `document.querySelector('[data-testid=agents-table] tbody tr').cells[10].textContent`); hb == "–" || hb == "" {
			t.Errorf("no last heartbeat shown: %q", hb)
		}
		// Filter by region, then sort by hostname, descending.
		eval[bool](b, `(() => { const s = document.querySelector('[data-testid=region-filter]'); s.value = 'r2'; s.dispatchEvent(new Event('change')); return true; })()`)
		b.waitJS(uiWait, "only agent-2 in region r2", `(() => { const r = `+rowsJS("agents-table", "region")+`; return r.length === 1 && r[0] === 'r2'; })()`)
		eval[bool](b, `(() => { const s = document.querySelector('[data-testid=region-filter]'); s.value = ''; s.dispatchEvent(new Event('change')); return true; })()`)
		// Sorted by hostname to begin with; a click turns the order round.
		hostnames := `[...document.querySelectorAll('[data-testid=agents-table] tbody tr')].map(r => r.cells[1].textContent).join(',')`
		b.waitJS(uiWait, "agents sorted by hostname", hostnames+` === 'agent-1,agent-2,agent-3'`)
		b.do(uiWait, "sort by hostname, descending", chromedp.Click(chromedp.CSS(`[data-testid=agents-table] th[data-key=hostname] button`)))
		b.waitJS(uiWait, "agents sorted by hostname, descending", hostnames+` === 'agent-3,agent-2,agent-1'`)
		b.do(uiWait, "sort by region", chromedp.Click(chromedp.CSS(`[data-testid=agents-table] th[data-key=region] button`)))
		b.waitJS(uiWait, "agents sorted by region", hostnames+` === 'agent-1,agent-2,agent-3'`)
		b.screenshot("cluster")
	})

	const app = `{"id": "/ui/web", "cmd": "sleep 600", "instances": 2, "cpus": 0.1, "mem": 16, "portDefinitions": [{"port": 0, "name": "http"}]}`
	step("CreateAppFromForm", func(t *testing.T) {
		b.do(uiWait, "open the apps page and fill the form",
			chromedp.Click(chromedp.CSS(`nav a[data-nav=apps]`)),
			chromedp.WaitVisible(tid("create-json")),
			chromedp.SetValue(tid("create-json"), app),
			chromedp.Click(tid("create-submit")))
		b.waitJS(uiWait, "the app page of /ui/web", `location.hash === '#/app/ui/web' && document.querySelector('[data-testid=app-title]').textContent === '/ui/web'`)
		b.waitJS(uiWait, "2 running tasks on the app page", runningTasksJS(2))
		stillSameDocument()
		names := eval[string](b, `document.querySelector('[data-testid=dns-names]').textContent`)
		if !strings.Contains(names, "web.ui.marathon.mesos") || !strings.Contains(names, "_web.ui._tcp.marathon.mesos") {
			t.Errorf("DNS names: %q", names)
		}
		c.waitFor(uiWait, "the API to agree", func() (bool, string) {
			n := countState(c.tasks("/ui/web"), "TASK_RUNNING")
			return n == 2, fmt.Sprintf("%d running", n)
		})
	})

	step("ScaleChangesTasksLive", func(t *testing.T) {
		// The create deployment must be over, or the master answers 409.
		b.waitJS(uiWait, "the create deployment to end", `document.querySelector('[data-testid=app-deployments]').textContent === 'none'`)
		b.do(uiWait, "scale to 3",
			chromedp.SetValue(tid("scale-input"), "3"),
			chromedp.Click(tid("scale-submit")))
		b.waitJS(uiWait, "3 running tasks", runningTasksJS(3))
		b.waitJS(uiWait, "the scale deployment to end", `document.querySelector('[data-testid=app-deployments]').textContent === 'none'`)
		b.do(uiWait, "scale to 1",
			chromedp.SetValue(tid("scale-input"), "1"),
			chromedp.Click(tid("scale-submit")))
		b.waitJS(uiWait, "1 running task left", runningTasksJS(1))
		b.waitJS(uiWait, "the scale deployment to end", `document.querySelector('[data-testid=app-deployments]').textContent === 'none'`)
		before := eval[[]string](b, rowsJS("tasks-table", "task-id"))
		b.do(uiWait, "restart", chromedp.Click(tid("restart")))
		b.waitJS(uiWait, "a new task in place of "+before[0], fmt.Sprintf(`(() => { const ids = %s; return ids.length === 1 && ids[0] !== %q; })() && %s`,
			rowsJS("tasks-table", "task-id"), before[0], runningTasksJS(1)))
		stillSameDocument()
		b.screenshot("app")
	})

	step("RollBackToTheFirstVersion", func(t *testing.T) {
		// Create, scale to 3, scale to 1, restart: four versions, the
		// first of 2 instances.
		b.waitJS(uiWait, "the restart deployment to end", `document.querySelector('[data-testid=app-deployments]').textContent === 'none'`)
		b.waitJS(uiWait, "four versions, the newest current", `(() => {
			const rows = [...document.querySelectorAll('[data-testid=versions-table] tbody tr[data-version]')];
			return rows.length === 4 && rows[0].textContent.includes('current') && rows[3].querySelector('[data-testid=rollback]') !== null;
		})()`)
		first := eval[string](b, `[...document.querySelectorAll('[data-testid=versions-table] tbody tr[data-version]')][3].dataset.version`)
		b.do(uiWait, "roll back to "+first, chromedp.Click(chromedp.CSS(`[data-testid=versions-table] tbody tr:last-child [data-testid=rollback]`)))
		b.waitJS(uiWait, "2 running tasks after the rollback", runningTasksJS(2))
		c.waitFor(uiWait, "the API to show the first definition again", func() (bool, string) {
			var doc struct {
				App struct {
					Instances int    `json:"instances"`
					Version   string `json:"version"`
				} `json:"app"`
			}
			c.mustDo("GET", "/v2/apps/ui/web", nil, 200, &doc)
			return doc.App.Instances == 2 && doc.App.Version > first, fmt.Sprintf("%+v", doc.App)
		})
		stillSameDocument()
	})

	step("InvalidAppShows422", func(t *testing.T) {
		before := len(c.appIDs())
		bad := `{"id": "/ui/Bad", "cmd": "sleep 600", "instances": 1, "mem": -4, "cpus": 0.1}`
		b.do(uiWait, "submit an invalid app",
			chromedp.Click(chromedp.CSS(`nav a[data-nav=apps]`)),
			chromedp.WaitVisible(tid("create-json")),
			chromedp.SetValue(tid("create-json"), bad),
			chromedp.Click(tid("create-submit")))
		b.waitJS(uiWait, "the messages beside mem and id", `(() => {
			const err = f => (document.querySelector('[data-testid=create-fields] li[data-field="' + f + '"] .field-error') || {}).textContent || '';
			return err('mem').includes('expected 0.0 or more') && err('id').includes('regular expression') && err('cpus') === '';
		})()`)
		if msg := eval[string](b, `document.querySelector('[data-testid=create-message]').textContent`); !strings.Contains(msg, "Object is not valid") || !strings.Contains(msg, "422") {
			t.Errorf("message: %q", msg)
		}
		if code, body := c.do("GET", "/v2/apps/ui/Bad", nil); code != 404 {
			t.Fatalf("GET /v2/apps/ui/Bad: %d %s", code, body)
		}
		if after := len(c.appIDs()); after != before {
			t.Fatalf("%d apps before, %d after an invalid create", before, after)
		}
		stillSameDocument()
		b.screenshot("apps")
	})

	step("DestroyAsksFirst", func(t *testing.T) {
		b.do(uiWait, "open the app page", chromedp.Click(chromedp.CSS(`[data-testid=apps-table] a[href="#/app/ui/web"]`)))
		b.waitJS(uiWait, "the app page", runningTasksJS(2)) // rolled back to its first definition
		dialogOpen := `document.querySelector('[data-testid=destroy-dialog]').open`
		b.do(uiWait, "destroy, then cancel", chromedp.Click(tid("destroy")))
		b.waitJS(uiWait, "the confirmation dialog", dialogOpen)
		b.do(uiWait, "cancel", chromedp.Click(tid("destroy-cancel")))
		b.waitJS(uiWait, "the dialog to close", `!`+dialogOpen)
		if code, body := c.do("GET", "/v2/apps/ui/web", nil); code != 200 {
			t.Fatalf("cancel removed the app: %d %s", code, body)
		}
		b.waitJS(uiWait, "the cancel note", `document.querySelector('[data-testid=action-status]').textContent === 'destroy cancelled'`)

		b.do(uiWait, "destroy, then confirm", chromedp.Click(tid("destroy")))
		b.waitJS(uiWait, "the confirmation dialog", dialogOpen)
		b.do(uiWait, "confirm", chromedp.Click(tid("destroy-confirm")))
		b.waitJS(uiWait, "the apps page without /ui/web", `location.hash === '#/apps' && !document.querySelector('[data-testid=apps-table] tr[data-app-id="/ui/web"]')`)
		c.waitFor(uiWait, "the app to be gone from the API", func() (bool, string) {
			code, _ := c.do("GET", "/v2/apps/ui/web", nil)
			return code == 404, fmt.Sprintf("status %d", code)
		})
		stillSameDocument()
	})

	step("EventsPage", func(t *testing.T) {
		b.do(uiWait, "open the events page", chromedp.Click(chromedp.CSS(`nav a[data-nav=events]`)))
		// Everything since the page opened is there: the app's whole life.
		b.waitJS(uiWait, "the app's events", `(() => {
			const types = `+rowsJS("events-table", "type")+`;
			return ['api_post_event', 'status_update_event', 'deployment_success', 'app_terminated_event'].every(t => types.includes(t));
		})()`)
		posts := `document.querySelectorAll('[data-testid=events-table] tr[data-type=api_post_event]').length`
		before := eval[int](b, posts)
		b.do(uiWait, "pause", chromedp.Click(tid("pause")))
		c.mustDo("POST", "/v2/apps", `{"id": "/ui/paused", "cmd": "sleep 600", "instances": 1, "cpus": 0.1, "mem": 16}`, 201, nil)
		b.waitJS(uiWait, "events held back while paused", `/^[1-9]\d* events? held back$/.test(document.querySelector('[data-testid=held-count]').textContent)`)
		if n := eval[int](b, posts); n != before {
			t.Fatalf("%d api_post_event rows while paused, want the %d from before", n, before)
		}
		held := eval[int](b, `parseInt(document.querySelector('[data-testid=held-count]').textContent, 10)`)
		rows := eval[int](b, `document.querySelectorAll('[data-testid=events-table] tbody tr').length`)
		b.do(uiWait, "resume", chromedp.Click(tid("pause")))
		b.waitJS(uiWait, "the held events shown", fmt.Sprintf(`document.querySelectorAll('[data-testid=events-table] tbody tr').length >= %d && `+posts+` === %d && document.querySelector('[data-testid=held-count]').textContent === ''`, rows+held, before+1))
		// Filter by app.
		eval[bool](b, `(() => { const i = document.querySelector('[data-testid=event-app-filter]'); i.value = '/ui/paused'; i.dispatchEvent(new Event('input')); return true; })()`)
		b.waitJS(uiWait, "only /ui/paused events", `(() => { const apps = [...document.querySelectorAll('[data-testid=events-table] tbody tr')].map(r => r.cells[3].textContent); return apps.length > 0 && apps.every(a => a.includes('/ui/paused')); })()`)
		eval[bool](b, `(() => { const i = document.querySelector('[data-testid=event-app-filter]'); i.value = ''; i.dispatchEvent(new Event('input')); return true; })()`)
		// Filter by type.
		eval[bool](b, `(() => { const s = document.querySelector('[data-testid=event-type-filter]'); s.value = 'status_update_event'; s.dispatchEvent(new Event('change')); return true; })()`)
		b.waitJS(uiWait, "only status_update_event rows", `(() => { const t = `+rowsJS("events-table", "type")+`; return t.length > 0 && t.every(x => x === 'status_update_event'); })()`)
		eval[bool](b, `(() => { const s = document.querySelector('[data-testid=event-type-filter]'); s.value = ''; s.dispatchEvent(new Event('change')); return true; })()`)
		stillSameDocument()
		b.screenshot("events")
	})

	step("ClusterUpdatesLive", func(t *testing.T) {
		b.do(uiWait, "open the cluster page", chromedp.Click(chromedp.CSS(`nav a[data-nav=cluster]`)))
		b.waitJS(uiWait, "the agents table", `document.querySelectorAll('[data-testid=agents-table] tbody tr').length === 3`)
		c.mustDo("POST", "/v2/apps", `{"id": "/ui/spread", "cmd": "sleep 600", "instances": 3, "cpus": 0.5, "mem": 100, "constraints": [["hostname", "UNIQUE"]]}`, 201, nil)
		// /ui/paused holds 0.1 cpus and 16 MB on one of them.
		b.waitJS(uiWait, "every agent's used cpus and mem to include /ui/spread's task", `[...document.querySelectorAll('[data-testid=agents-table] tbody tr')].every(r =>
			['0.5 / 2', '0.6 / 2'].includes(r.cells[5].textContent) && ['100 / 2048', '116 / 2048'].includes(r.cells[6].textContent))`)
		stillSameDocument()
	})

	step("Suspend", func(t *testing.T) {
		b.do(uiWait, "open /ui/spread", chromedp.Navigate(ui+"/ui/#/app/ui/spread"))
		b.waitJS(uiWait, "its 3 tasks", runningTasksJS(3))
		b.waitJS(uiWait, "its deployment to end", `document.querySelector('[data-testid=app-deployments]').textContent === 'none'`)
		b.do(uiWait, "suspend", chromedp.Click(tid("suspend")))
		b.waitJS(uiWait, "no tasks", `document.querySelectorAll('[data-testid=tasks-table] tbody tr[data-task-id]').length === 0 &&
			document.querySelector('[data-testid=app-counts]').textContent.endsWith('0 wanted')`)
	})

	step("NoDataWithoutCredentials", func(t *testing.T) {
		// The same UI in a browser profile that was never given them.
		ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
		defer cancel()
		tctx, tcancel := context.WithTimeout(ctx, uiWait)
		defer tcancel()
		// Headless Chromium has no prompt to show: it gives up on the
		// challenge and shows its error page.
		if err := chromedp.Do(tctx, chromedp.Navigate(ui+"/ui/#/apps")); err == nil || !strings.Contains(err.Error(), "ERR_INVALID_AUTH_CREDENTIALS") {
			t.Errorf("opening the UI without credentials: %v, want ERR_INVALID_AUTH_CREDENTIALS", err)
		}
		text, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.innerText : ''`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, "/ui/spread") || strings.Contains(text, "agent-1") {
			t.Errorf("the UI without credentials shows: %.300s", text)
		}
	})

	askedOnce()
	if errs := b.pageErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %v", errs)
	}
}

// appIDs lists the apps the API has.
func (c *cluster) appIDs() []string {
	c.t.Helper()
	var body struct {
		Apps []struct {
			ID string `json:"id"`
		} `json:"apps"`
	}
	c.mustDo("GET", "/v2/apps", nil, 200, &body)
	ids := make([]string, len(body.Apps))
	for i, a := range body.Apps {
		ids[i] = a.ID
	}
	return ids
}
