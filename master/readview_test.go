package master

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// A GET of apps or tasks is answered while a write holds the state's lock
// (a reconcile pass, a status update), and shows every write that was
// acknowledged before it.
func TestReadsDoNotWaitForTheStateLock(t *testing.T) {
	m, h := newAPI(t, "")
	for _, id := range []string{"web", "api", "db"} {
		if r := call(t, h, "POST", "/v2/apps", `{"id":"`+id+`","cmd":"sleep 1000","instances":0}`); r.status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", id, r.status, r.body)
		}
	}
	if r := call(t, h, "PUT", "/v2/apps/web?force=true", `{"cmd":"sleep 2000"}`); r.status != http.StatusOK {
		t.Fatalf("PUT web: %d %s", r.status, r.body)
	}
	if r := call(t, h, "DELETE", "/v2/apps/db?force=true", ""); r.status != http.StatusOK {
		t.Fatalf("DELETE db: %d %s", r.status, r.body)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	type answer struct {
		path string
		res  response
	}
	answers := make(chan answer)
	paths := []string{"/v2/apps", "/v2/apps/web", "/v2/apps/web/tasks", "/v2/tasks"}
	go func() {
		for _, p := range paths {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			answers <- answer{p, response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}}
		}
	}()
	got := map[string]response{}
	for range paths {
		select {
		case a := <-answers:
			got[a.path] = a.res
		case <-time.After(5 * time.Second):
			t.Fatalf("GET still waiting after 5 s while the state's lock is held for writing (answered: %d of %d)", len(got), len(paths))
		}
	}
	for p, r := range got {
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, r.status, r.body)
		}
	}
	var ids []string
	for _, a := range at(t, got["/v2/apps"].json(t), "apps").([]any) {
		ids = append(ids, a.(map[string]any)["id"].(string))
	}
	if want := []string{"/api", "/web"}; !slices.Equal(ids, want) {
		t.Errorf("GET /v2/apps lists %v, want %v (created, updated and deleted before it)", ids, want)
	}
	if cmd := at(t, got["/v2/apps/web"].json(t), "app", "cmd"); cmd != "sleep 2000" {
		t.Errorf("GET /v2/apps/web: cmd %v, want the update's", cmd)
	}
}

// What a write the store refused staged is never shown, neither while the
// write is in flight nor after it failed; the next write shows as usual.
func TestReadsShowNothingOfAFailedWrite(t *testing.T) {
	store := &gatedStore{}
	m, err := New(Config{NC: eventstest.Connect(t, eventstest.StartNATS(t)), Store: store,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	establishForTest(t, m)
	h := m.Handler()
	listed := func() []string {
		var ids []string
		for _, a := range at(t, call(t, h, "GET", "/v2/apps", "").json(t), "apps").([]any) {
			ids = append(ids, a.(map[string]any)["id"].(string))
		}
		return ids
	}
	create := func(id string) error {
		app, err := appForCreate([]byte(`{"id": "`+id+`", "cmd": "sleep 1", "instances": 0}`), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.CreateApp(app)
		return err
	}

	verdict, entered := make(chan error), make(chan struct{})
	store.mu.Lock()
	store.gate, store.entered = verdict, entered
	store.mu.Unlock()
	failed := make(chan error, 1)
	go func() { failed <- create("/doomed") }()
	<-entered // the store is writing /doomed
	if ids := listed(); len(ids) != 0 {
		t.Errorf("while the write is in flight GET /v2/apps lists %v, want nothing", ids)
	}
	if r := call(t, h, "GET", "/v2/apps/doomed", ""); r.status != http.StatusNotFound {
		t.Errorf("while the write is in flight GET /v2/apps/doomed: %d, want 404", r.status)
	}
	diskFull := errors.New("no space left on device")
	verdict <- diskFull
	if err := <-failed; !errors.Is(err, diskFull) {
		t.Fatalf("create /doomed: %v, want the store's error", err)
	}
	if ids := listed(); len(ids) != 0 {
		t.Errorf("after the failed write GET /v2/apps lists %v, want nothing", ids)
	}
	if err := create("/kept"); err != nil {
		t.Fatal(err)
	}
	if ids := listed(); !slices.Equal(ids, []string{"/kept"}) {
		t.Errorf("after the next write GET /v2/apps lists %v, want [/kept]", ids)
	}
}

// The read view answers byte for byte what the state answered before it,
// on a random state and after random batches folded into it.
func TestReadViewAnswersAsTheState(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 100000))
	s := randomState(rng)
	rv := newReadViews()
	rv.reset(s)
	m := &Master{reads: rv, log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: Config{Now: time.Now}}
	compareReads(t, "reset", m, s)
	at := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	for round := range 40 {
		var batch []events.Event
		for range 1 + rng.IntN(30) {
			at = at.Add(time.Second)
			e := randomChange(rng, s, at).Stamp(s, 1, at)
			if err := s.Apply(e); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			batch = append(batch, e)
		}
		rv.apply(batch)
		compareReads(t, fmt.Sprintf("round %d", round), m, s)
	}
	// And a picture made anew from the state equals the folded one.
	folded := rv.load()
	rv.reset(s)
	if len(folded.apps) != len(rv.load().apps) {
		t.Errorf("folded view has %d apps, made anew %d", len(folded.apps), len(rv.load().apps))
	}
}

// compareReads fails when a read served by m's read view differs from
// what the state-walking code answers for s.
func compareReads(t *testing.T, when string, m *Master, s *events.State) {
	t.Helper()
	targets := []string{"/v2/apps", "/v2/apps?embed=apps.tasks", "/v2/apps?id=Ap", "/v2/apps?cmd=SLEEP&embed=app.tasks",
		"/v2/apps?label=env==prod", "/v2/apps?label=tier", "/v2/tasks", "/v2/tasks?status=running&status=staging",
		"/v2/tasks?status=killing", "/v2/apps/gone", "/v2/apps/gone/tasks"}
	ids := make([]string, 0, len(s.Apps))
	for id := range s.Apps {
		ids = append(ids, id)
	}
	for id := range s.Tasks {
		if _, ok := s.Apps[s.Tasks[id].AppID]; !ok {
			ids = append(ids, s.Tasks[id].AppID) // an orphan's app: 404
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		targets = append(targets, "/v2/apps"+id, "/v2/apps"+id+"/tasks")
	}
	for _, target := range targets {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		path, _, _ := strings.Cut(target, "?")
		switch {
		case path == "/v2/apps":
			m.listApps(got, req)
			oldListApps(want, req, s)
		case path == "/v2/tasks":
			m.listTasks(got, req)
			oldListTasks(want, req, s)
		case strings.HasSuffix(path, "/tasks"):
			id := strings.TrimSuffix(strings.TrimPrefix(path, "/v2/apps"), "/tasks")
			m.getAppTasks(got, req, id)
			oldGetAppTasks(want, req, s, id)
		default:
			id := strings.TrimPrefix(path, "/v2/apps")
			m.getApp(got, req, id)
			oldGetApp(want, req, s, id)
		}
		if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Fatalf("%s: GET %s from the read view: %d\n%s\nfrom the state: %d\n%s", when, target,
				got.Code, got.Body.Bytes(), want.Code, want.Body.Bytes())
		}
	}
}

// The reads as they were served from the state before the read view.

func oldListApps(w http.ResponseWriter, r *http.Request, s *events.State) {
	q := r.URL.Query()
	match, _ := parseLabelSelector(q.Get("label"))
	idPart, cmdPart := strings.ToLower(q.Get("id")), strings.ToLower(q.Get("cmd"))
	withTasks := embedsTasks(r)
	views := []appView{}
	deps := deploymentsByApp(s)
	for _, a := range s.SortedApps() {
		if idPart != "" && !strings.Contains(strings.ToLower(a.ID), idPart) {
			continue
		}
		if cmdPart != "" && !strings.Contains(strings.ToLower(a.Cmd), cmdPart) {
			continue
		}
		if !match(a.Labels) {
			continue
		}
		views = append(views, appViewOf(s, a, withTasks, deps))
	}
	writeJSON(w, http.StatusOK, struct {
		Apps []appView `json:"apps"`
	}{views})
}

func oldGetApp(w http.ResponseWriter, _ *http.Request, s *events.State, id string) {
	a, ok := s.Apps[id]
	if !ok {
		writeMessage(w, http.StatusNotFound, appNotFound(id).Error())
		return
	}
	// GET /v2/apps/{id} embeds the app's last failure too (http_embeds.go).
	type withFailure struct {
		appView
		LastTaskFailure *taskFailureView `json:"lastTaskFailure,omitempty"`
	}
	v := withFailure{appView: appViewOf(s, a, true, deploymentsByApp(s))}
	if f, ok := s.AppFailures[id]; ok {
		fv := taskFailureViewOf(f)
		v.LastTaskFailure = &fv
	}
	writeJSON(w, http.StatusOK, struct {
		App withFailure `json:"app"`
	}{v})
}

func oldListTasks(w http.ResponseWriter, r *http.Request, s *events.State) {
	var want []events.TaskState
	for _, st := range r.URL.Query()["status"] {
		want = append(want, events.TaskState("TASK_"+strings.ToUpper(st)))
	}
	var tasks []events.Task
	for _, t := range s.Tasks {
		if len(want) == 0 || slices.Contains(want, t.State) {
			tasks = append(tasks, t)
		}
	}
	sort.Slice(tasks, func(i, j int) bool {
		if tasks[i].AppID != tasks[j].AppID {
			return tasks[i].AppID < tasks[j].AppID
		}
		return tasks[i].ID < tasks[j].ID
	})
	writeJSON(w, http.StatusOK, taskList{taskViews(tasks)})
}

func oldGetAppTasks(w http.ResponseWriter, _ *http.Request, s *events.State, id string) {
	if _, ok := s.Apps[id]; !ok {
		writeMessage(w, http.StatusNotFound, appNotFound(id).Error())
		return
	}
	writeJSON(w, http.StatusOK, taskList{taskViews(s.TasksOf(id))})
}

// randomState is a few dozen apps (some with health checks, labels and
// odd cases in their ids), their tasks in every state, tasks whose app is
// gone, and deployments naming several apps with actions waiting.
func randomState(rng *rand.Rand) *events.State {
	s := events.NewState()
	at := time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)
	for i := range 5 {
		id := fmt.Sprintf("agent-%d", i)
		s.Agents[id] = events.Agent{ID: id, Hostname: fmt.Sprintf("h%d", i), IP: fmt.Sprintf("10.0.0.%d", i), State: events.AgentActive}
	}
	for range 30 {
		a := randomApp(rng, at)
		s.Apps[a.ID] = a
	}
	for range 150 {
		t := randomTask(rng, s, at)
		s.Tasks[t.ID] = t
	}
	for range 8 {
		d := randomDeployment(rng, s, at)
		s.Deployments[d.ID] = d
	}
	s.IndexByAgent()
	return s
}

var appNames = []string{"/web", "/api", "/Apps/One", "/apps/two", "/db", "/batch/x", "/batch/y", "/cache", "/q", "/ZZ", "/gone"}

func randomApp(rng *rand.Rand, at time.Time) events.App {
	id := appNames[rng.IntN(len(appNames))]
	if rng.IntN(3) == 0 {
		id += fmt.Sprintf("/n%d", rng.IntN(20))
	}
	a := events.App{ID: id, Cmd: []string{"sleep 1000", "SLEEP 5", "python -m http.server"}[rng.IntN(3)],
		Instances: rng.IntN(5), Cpus: 0.1, Mem: 32, Version: at,
		VersionInfo: events.VersionInfo{LastScalingAt: at, LastConfigChangeAt: at}}
	if rng.IntN(2) == 0 {
		a.Labels = map[string]string{"env": []string{"prod", "dev"}[rng.IntN(2)]}
		if rng.IntN(2) == 0 {
			a.Labels["tier"] = "front"
		}
	}
	if rng.IntN(3) == 0 {
		a.HealthChecks = []events.HealthCheck{{Protocol: "HTTP", Path: "/"}}
	}
	return a
}

func randomTask(rng *rand.Rand, s *events.State, at time.Time) events.Task {
	appID := appNames[rng.IntN(len(appNames))]
	if ids := sortedKeys(s.Apps); len(ids) > 0 && rng.IntN(5) != 0 {
		appID = ids[rng.IntN(len(ids))]
	}
	agent := fmt.Sprintf("agent-%d", rng.IntN(5))
	t := events.Task{ID: fmt.Sprintf("%s.%d", strings.ReplaceAll(strings.Trim(appID, "/"), "/", "_"), rng.IntN(40)),
		AppID: appID, AgentID: agent, Host: s.Agents[agent].Hostname,
		IPAddresses: []events.IPAddress{{IPAddress: s.Agents[agent].IP, Protocol: "IPv4"}},
		Ports:       []int{31000 + rng.IntN(100)},
		State: []events.TaskState{events.TaskStaging, events.TaskStarting, events.TaskRunning, events.TaskRunning,
			events.TaskKilling, events.TaskUnreachable}[rng.IntN(6)],
		StagedAt: at, Version: at}
	if t.State == events.TaskRunning {
		started := at.Add(time.Second)
		t.StartedAt = &started
		if rng.IntN(2) == 0 {
			healthy := rng.IntN(3) != 0
			t.Healthy = &healthy
			t.HealthCheckResults = []events.HealthCheckResult{{Alive: healthy, TaskID: t.ID, LastSuccess: &started}}
		}
	}
	return t
}

func randomDeployment(rng *rand.Rand, s *events.State, at time.Time) events.Deployment {
	ids := sortedKeys(s.Apps)
	d := events.Deployment{ID: fmt.Sprintf("dep-%d", rng.IntN(12)), Version: at.Add(time.Duration(rng.IntN(3)) * time.Second)}
	for range 1 + rng.IntN(3) {
		app := appNames[rng.IntN(len(appNames))]
		if len(ids) > 0 && rng.IntN(4) != 0 {
			app = ids[rng.IntN(len(ids))]
		}
		d.AffectedApps = append(d.AffectedApps, app)
		if rng.IntN(2) == 0 {
			d.CurrentActions = append(d.CurrentActions, events.DeploymentAction{Action: "ScaleApplication", App: app,
				Waiting: []string{"", "no agent offers 2 cpus"}[rng.IntN(2)]})
		}
	}
	return d
}

// randomChange is one change a leader could make to s.
func randomChange(rng *rand.Rand, s *events.State, at time.Time) events.Change {
	switch rng.IntN(10) {
	case 0:
		return events.PutApp(randomApp(rng, at))
	case 1:
		if ids := sortedKeys(s.Apps); len(ids) > 0 {
			return events.DeleteApp(ids[rng.IntN(len(ids))])
		}
	case 2:
		return events.PutDeployment(randomDeployment(rng, s, at))
	case 3:
		if ids := sortedKeys(s.Deployments); len(ids) > 0 {
			return events.DeleteDeployment(ids[rng.IntN(len(ids))])
		}
	case 4:
		if ids := sortedKeys(s.Tasks); len(ids) > 0 {
			return events.DeleteTask(ids[rng.IntN(len(ids))])
		}
	case 5:
		if ids := sortedKeys(s.Tasks); len(ids) > 0 {
			t := s.Tasks[ids[rng.IntN(len(ids))]]
			t.State = []events.TaskState{events.TaskFinished, events.TaskFailed, events.TaskKilled}[rng.IntN(3)]
			return events.PutTask(t)
		}
	}
	t := randomTask(rng, s, at)
	if old, ok := s.Tasks[t.ID]; ok && rng.IntN(2) == 0 {
		t.AppID, t.AgentID, t.Host, t.IPAddresses = old.AppID, old.AgentID, old.Host, old.IPAddresses
	}
	return events.PutTask(t)
}

// BenchmarkReadViewBatch100k is what the read view costs at 100,000
// tasks: making it whole at the start of a term, and what the committer
// adds to each batch, folding 1,000 task events (launches on 100 apps,
// then their status updates) into it; and the GET /v2/apps after such a
// batch, which encodes the 100 apps it touched anew.
func BenchmarkReadViewBatch100k(b *testing.B) {
	st := benchState()
	rv := newReadViews()
	rv.reset(st)
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	batch := func(state events.TaskState) []events.Event {
		evs := make([]events.Event, 0, 1000)
		for a := range 100 {
			appID := fmt.Sprintf("/bench/app%05d", a*100)
			for k := range 10 {
				agent := fmt.Sprintf("agent-%04d-S%d", (a*10+k)%1000, (a*10+k)%1000)
				t := events.Task{ID: fmt.Sprintf("bench_app%05d.new%d", a*100, k), AppID: appID, AgentID: agent,
					Host: st.Agents[agent].Hostname, Ports: []int{32000 + k}, State: state, StagedAt: at, Version: at}
				evs = append(evs, events.Event{Type: events.TaskUpdated, ID: t.ID, Task: &t})
			}
		}
		return evs
	}
	launches, updates := batch(events.TaskStaging), batch(events.TaskRunning)
	m := &Master{reads: rv, log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: Config{Now: time.Now}}
	list := func() int {
		rec := &countingResponse{header: http.Header{}}
		m.listApps(rec, httptest.NewRequest(http.MethodGet, "/v2/apps", nil))
		return rec.size
	}
	list() // every app encoded once, as after the first GET of a term
	// What a new term adds to its takeover: the first picture, made whole.
	b.Run("reset", func(b *testing.B) {
		for b.Loop() {
			newReadViews().reset(st)
		}
	})
	for _, bench := range []struct {
		name string
		get  bool
	}{{"apply", false}, {"apply+GET /v2/apps", true}} {
		b.Run(bench.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				evs := launches
				if i%2 == 1 {
					evs = updates
				}
				i++
				rv.apply(evs)
				if bench.get {
					list()
				}
			}
		})
	}
	var v struct{ Apps []json.RawMessage }
	rec := httptest.NewRecorder()
	m.listApps(rec, httptest.NewRequest(http.MethodGet, "/v2/apps", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || len(v.Apps) != 10000 {
		b.Fatalf("GET /v2/apps after the batches: %d apps, %v", len(v.Apps), err)
	}
}

// A new term's reads show the state it loaded, before it changes anything.
func TestReadsOfANewTermShowWhatItLoaded(t *testing.T) {
	store := &MemStore{}
	newMaster := func() (*Master, http.Handler) {
		m, err := New(Config{NC: eventstest.Connect(t, eventstest.StartNATS(t)), Store: store,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		establishForTest(t, m)
		return m, m.Handler()
	}
	_, first := newMaster()
	if r := call(t, first, "POST", "/v2/apps", `{"id":"web","cmd":"sleep 1000","instances":0}`); r.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	_, next := newMaster()
	if r := call(t, next, "GET", "/v2/apps/web", ""); r.status != http.StatusOK {
		t.Fatalf("GET /v2/apps/web from the next term: %d %s", r.status, r.body)
	}
}
