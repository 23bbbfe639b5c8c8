package master

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/atollhq/atoll/events"
)

// API reads of apps and tasks are served from a read view: an immutable
// picture of the published state (what the store holds and followers
// were told), swapped in whole through an atomic pointer. A read loads the
// pointer and takes no lock, so it never queues behind a write (Go's
// RWMutex queues new readers behind a waiting writer) and a write never
// queues behind a long read.
//
// The committer folds each published batch into the next picture before
// it wakes the batch's waiters, so a caller whose write returned sees it
// in its next read (Marathon clients rely on that). Only the apps a batch
// touched get new entries; every other entry, with the JSON it has
// already encoded, is shared with the picture before, so listing 10,000
// unchanged apps copies bytes rather than encoding them again.
//
// The view shows only what is published: a change staged but not yet
// durable is not in it, and a batch the store refused never reaches it,
// so a read never shows a change whose caller was told it failed. It is a
// follower of the leader's own stream, fed in process.

// readView is one picture: every app that has a record or tasks, by id.
// Nothing in it changes once it is published.
type readView struct {
	apps []*appEntry
	// groups are the group records (readview_groups.go), shared between
	// pictures until a batch changes one.
	groups map[string]events.Group
	// past is what groups held at their versions (readview_groups.go).
	past *groupPast
}

// find returns the entry for an app id, if any.
func (v *readView) find(id string) (*appEntry, bool) {
	i, ok := slices.BinarySearchFunc(v.apps, id, func(e *appEntry, id string) int { return strings.Compare(e.id, id) })
	if !ok {
		return nil, false
	}
	return v.apps[i], true
}

// appEntry is one app as the API shows it. app is nil for tasks whose app
// is gone (they are listed by /v2/tasks until they are reaped).
type appEntry struct {
	id    string
	app   *events.App
	tasks *taskSet
	deps  []events.Deployment // naming the app, oldest first
	// versions is the app's kept definitions, oldest first (shared with
	// the state's history, never changed).
	versions []events.App
	failure  *events.TaskFailure // the app's last (lastTaskFailure), if any
	// lowerID and lowerCmd are for the case-insensitive ?id= and ?cmd=
	// filters, made once rather than per app per request.
	lowerID, lowerCmd string

	once sync.Once
	json []byte // the app view without tasks
	err  error
}

func newAppEntry(id string, app *events.App, tasks *taskSet, deps []events.Deployment, versions []events.App, failure *events.TaskFailure) *appEntry {
	e := &appEntry{id: id, app: app, tasks: tasks, deps: deps, versions: versions, failure: failure, lowerID: strings.ToLower(id)}
	if app != nil {
		e.lowerCmd = strings.ToLower(app.Cmd)
	}
	return e
}

// encode makes, once, the app's view without tasks as JSON and, if
// withTasks, its tasks' (jsonAnswer.app joins them). Afterwards e.json
// and e.tasks.json may be read.
func (e *appEntry) encode(withTasks bool) error {
	e.once.Do(func() {
		e.json, e.err = json.Marshal(appViewOfApp(e.app, e.tasks.counts, e.deps, nil, false))
		if e.err != nil {
			e.err = fmt.Errorf("encode app %s: %w", e.id, e.err)
		}
	})
	if e.err != nil || !withTasks {
		return e.err
	}
	return e.tasks.encode()
}

// taskSet is an app's tasks by id, with their counts and, made on first
// use, their views as JSON. Entries whose tasks did not change share it.
type taskSet struct {
	tasks  []events.Task
	counts events.TaskCounts

	once sync.Once
	json []byte // the task views, comma-separated
	ends []int  // where each task's JSON ends in json
	err  error
}

var noTasks = newTaskSet(nil)

func newTaskSet(tasks []events.Task) *taskSet {
	ts := &taskSet{tasks: tasks}
	for _, t := range tasks {
		ts.counts.Count(t)
	}
	return ts
}

// encode makes, once, the task views as JSON, comma-separated, and notes
// where each one ends. Afterwards ts.json and taskJSON may be read.
func (ts *taskSet) encode() error {
	ts.once.Do(func() {
		ts.ends = make([]int, len(ts.tasks))
		for i, t := range ts.tasks {
			data, err := json.Marshal(taskViewOf(t))
			if err != nil {
				ts.json, ts.ends = nil, nil
				ts.err = fmt.Errorf("encode task %s: %w", t.ID, err)
				return
			}
			if i > 0 {
				ts.json = append(ts.json, ',')
			}
			ts.json = append(ts.json, data...)
			ts.ends[i] = len(ts.json)
		}
		// Kept for as long as the tasks do not change: without the room
		// the appends left (a third more at 100,000 tasks).
		ts.json = slices.Clone(ts.json)
	})
	return ts.err
}

// taskJSON is task i's view as JSON, once encoded.
func (ts *taskSet) taskJSON(i int) []byte {
	start := 0
	if i > 0 {
		start = ts.ends[i-1] + 1 // past the comma
	}
	return ts.json[start:ts.ends[i]]
}

// readViews keeps the read view: the published picture, and what it takes
// to fold the next batch into it.
type readViews struct {
	cur atomic.Pointer[readView]

	// mu is held while the next picture is made: by the committer for a
	// batch, by a new term for its first picture.
	mu          sync.Mutex
	taskApp     map[string]string // task id → its app's id
	deployments map[string]events.Deployment
	depsOf      map[string]map[string]struct{} // app id → ids of deployments naming it
	versions    map[string][]events.App        // app id → its history (events.State.AppVersions)
	failures    map[string]events.TaskFailure  // app id → its last failure (events.State.AppFailures)
}

func newReadViews() *readViews {
	r := &readViews{}
	r.reset(events.NewState())
	return r
}

// load is the picture now.
func (r *readViews) load() *readView { return r.cur.Load() }

// reset makes the picture anew from s, which must not change meanwhile:
// at the start of a term, from the state it loaded.
func (r *readViews) reset(s *events.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Each app's tasks in a slice of exactly their number: the view
	// keeps them, and appending would leave up to half again as much
	// room (megabytes at 100,000 tasks).
	perApp := map[string]int{}
	for _, t := range s.Tasks {
		perApp[t.AppID]++
	}
	byApp := make(map[string][]events.Task, len(perApp))
	for id, n := range perApp {
		byApp[id] = make([]events.Task, 0, n)
	}
	r.taskApp = make(map[string]string, len(s.Tasks))
	for id, t := range s.Tasks {
		byApp[t.AppID] = append(byApp[t.AppID], t)
		r.taskApp[id] = t.AppID
	}
	r.versions = maps.Clone(s.AppVersions)
	if r.versions == nil {
		r.versions = map[string][]events.App{}
	}
	r.failures = maps.Clone(s.AppFailures)
	if r.failures == nil {
		r.failures = map[string]events.TaskFailure{}
	}
	r.deployments = make(map[string]events.Deployment, len(s.Deployments))
	r.depsOf = map[string]map[string]struct{}{}
	for id, d := range s.Deployments {
		r.deployments[id] = d
		r.indexDeployment(d, nil)
	}
	ids := make([]string, 0, len(s.Apps)+len(byApp))
	for id := range s.Apps {
		ids = append(ids, id)
	}
	for id := range byApp {
		if _, ok := s.Apps[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	v := &readView{apps: make([]*appEntry, len(ids)), groups: maps.Clone(s.Groups),
		past: &groupPast{versions: maps.Clone(s.GroupVersions), kept: maps.Clone(s.KeptApps)}}
	for i, id := range ids {
		var app *events.App
		if a, ok := s.Apps[id]; ok {
			app = &a
		}
		tasks := noTasks
		if l := byApp[id]; len(l) > 0 {
			slices.SortFunc(l, func(a, b events.Task) int { return strings.Compare(a.ID, b.ID) })
			tasks = newTaskSet(l)
		}
		v.apps[i] = newAppEntry(id, app, tasks, r.deploymentsOf(id), r.versions[id], r.failureOf(id))
	}
	r.cur.Store(v)
}

// appChange is what a batch did to one app: its record (when set) and its
// tasks by id (nil: gone).
type appChange struct {
	app    *events.App
	appSet bool
	tasks  map[string]*events.Task
}

// apply folds published events, in order, into the next picture and
// publishes it.
func (r *readViews) apply(evs []events.Event) {
	if len(evs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := map[string]*appChange{}
	var groups map[string]events.Group // the next picture's, once a group changes
	var past *groupPast                // the next picture's, once a group version changes
	touch := func(id string) *appChange {
		c, ok := changed[id]
		if !ok {
			c = &appChange{tasks: map[string]*events.Task{}}
			changed[id] = c
		}
		return c
	}
	for _, e := range evs {
		switch e.Type {
		case events.AppUpdated:
			a := *e.App
			c := touch(a.ID)
			c.app, c.appSet = &a, true
		case events.AppRemoved:
			c := touch(e.ID)
			c.app, c.appSet = nil, true
			delete(r.versions, e.ID)
			delete(r.failures, e.ID)
		case events.AppVersionAdded:
			touch(e.App.ID)
			r.versions[e.App.ID] = events.WithVersion(r.versions[e.App.ID], *e.App)
		case events.AppVersionRemoved:
			touch(e.App.ID)
			if h := events.WithoutVersion(r.versions[e.App.ID], e.App.Version); len(h) > 0 {
				r.versions[e.App.ID] = h
			} else {
				delete(r.versions, e.App.ID)
			}
		case events.TaskUpdated:
			t := *e.Task
			if old, ok := r.taskApp[t.ID]; ok && old != t.AppID {
				touch(old).tasks[t.ID] = nil
			}
			if t.State.Failed() { // as State.Apply: the app's last failure
				r.failures[t.AppID] = events.TaskFailure{Task: t, Timestamp: e.Time}
			}
			if t.State.Terminal() { // as State.Apply: the task is gone
				touch(t.AppID).tasks[t.ID] = nil
				delete(r.taskApp, t.ID)
			} else {
				touch(t.AppID).tasks[t.ID] = &t
				r.taskApp[t.ID] = t.AppID
			}
		case events.TaskRemoved:
			if app, ok := r.taskApp[e.ID]; ok {
				touch(app).tasks[e.ID] = nil
				delete(r.taskApp, e.ID)
			}
		case events.DeploymentUpdated:
			d := *e.Deployment
			if old, ok := r.deployments[d.ID]; ok {
				r.unindexDeployment(old, touch)
			}
			r.deployments[d.ID] = d
			r.indexDeployment(d, touch)
		case events.DeploymentRemoved:
			if old, ok := r.deployments[e.ID]; ok {
				r.unindexDeployment(old, touch)
				delete(r.deployments, e.ID)
			}
		case events.GroupUpdated, events.GroupRemoved:
			groups = r.groupsAfter(groups, e)
		default:
			past = r.groupPastAfter(past, e)
		}
	}
	cur := r.load()
	groupsChanged := groups != nil || past != nil
	if groups == nil {
		groups = cur.groups
	}
	if past == nil {
		past = cur.past
	}
	if len(changed) == 0 {
		if groupsChanged {
			r.cur.Store(&readView{apps: cur.apps, groups: groups, past: past})
		}
		return
	}
	ids := make([]string, 0, len(changed))
	for id := range changed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	apps := cur.apps
	next := make([]*appEntry, 0, len(apps)+len(ids))
	i := 0
	for _, id := range ids {
		for i < len(apps) && apps[i].id < id {
			next = append(next, apps[i])
			i++
		}
		var old *appEntry
		if i < len(apps) && apps[i].id == id {
			old = apps[i]
			i++
		}
		if e := r.entryAfter(id, old, changed[id]); e != nil {
			next = append(next, e)
		}
	}
	next = append(next, apps[i:]...)
	r.cur.Store(&readView{apps: next, groups: groups, past: past})
}

// entryAfter is the app's entry after change c (nil when the app has no
// record and no tasks left); old is its entry before, if any.
func (r *readViews) entryAfter(id string, old *appEntry, c *appChange) *appEntry {
	var app *events.App
	tasks := noTasks
	if old != nil {
		app, tasks = old.app, old.tasks
	}
	if c.appSet {
		app = c.app
	}
	if len(c.tasks) > 0 {
		tasks = newTaskSet(mergeTasks(tasks.tasks, c.tasks))
	}
	if app == nil && len(tasks.tasks) == 0 {
		return nil
	}
	return newAppEntry(id, app, tasks, r.deploymentsOf(id), r.versions[id], r.failureOf(id))
}

// failureOf is the app's last failure, if any.
func (r *readViews) failureOf(id string) *events.TaskFailure {
	if f, ok := r.failures[id]; ok {
		return &f
	}
	return nil
}

// mergeTasks is tasks (sorted by id) with changes made: a nil change
// removes the task, any other puts it.
func mergeTasks(tasks []events.Task, changes map[string]*events.Task) []events.Task {
	ids := make([]string, 0, len(changes))
	for id := range changes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// Exactly as long as the result: the view keeps it.
	n := len(tasks)
	for _, id := range ids {
		_, had := slices.BinarySearchFunc(tasks, id, func(t events.Task, id string) int { return strings.Compare(t.ID, id) })
		switch put := changes[id] != nil; {
		case put && !had:
			n++
		case !put && had:
			n--
		}
	}
	out := make([]events.Task, 0, n)
	i := 0
	for _, id := range ids {
		for i < len(tasks) && tasks[i].ID < id {
			out = append(out, tasks[i])
			i++
		}
		if i < len(tasks) && tasks[i].ID == id {
			i++
		}
		if t := changes[id]; t != nil {
			out = append(out, *t)
		}
	}
	return append(out, tasks[i:]...)
}

// indexDeployment notes the apps d names (touching each, if touch is set).
func (r *readViews) indexDeployment(d events.Deployment, touch func(string) *appChange) {
	for _, app := range d.AffectedApps {
		set := r.depsOf[app]
		if set == nil {
			set = map[string]struct{}{}
			r.depsOf[app] = set
		}
		set[d.ID] = struct{}{}
		if touch != nil {
			touch(app)
		}
	}
}

func (r *readViews) unindexDeployment(d events.Deployment, touch func(string) *appChange) {
	for _, app := range d.AffectedApps {
		if set := r.depsOf[app]; set != nil {
			delete(set, d.ID)
			if len(set) == 0 {
				delete(r.depsOf, app)
			}
		}
		touch(app)
	}
}

// deploymentsOf is the deployments naming an app, oldest first, as
// deploymentsByApp orders them.
func (r *readViews) deploymentsOf(app string) []events.Deployment {
	set := r.depsOf[app]
	if len(set) == 0 {
		return nil
	}
	out := make([]events.Deployment, 0, len(set))
	for id := range set {
		out = append(out, r.deployments[id])
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Version.Equal(out[j].Version) {
			return out[i].Version.Before(out[j].Version)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
