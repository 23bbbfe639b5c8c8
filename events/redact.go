package events

import "slices"

// Redaction: what travels on NATS goes to every sidecar and observer, and
// none of them needs an app's environment (DNS and HAProxy read ports,
// labels and tasks). Env values are secrets (API keys, passwords), so the
// events and snapshots the leader sends on NATS carry apps whose env is
// empty: no values, and no names either (a name such as
// AWS_SECRET_ACCESS_KEY says what there is to steal). Only the one agent
// that runs a task gets its env, in the launch request; the HTTP API, for
// those it lets read, shows apps whole.
//
// Redaction works record by record, so a follower's state stays
// self-consistent: the snapshot plus the events after it give exactly the
// redacted leader state. An app without env is left as it is (nil or {}),
// so that redacting changes nothing where there is nothing to hide.

// Redacted returns the app as NATS carries it: env emptied.
func (a App) Redacted() App {
	if len(a.Env) > 0 {
		a.Env = map[string]string{}
	}
	return a
}

// Redacted returns the deployment as NATS carries it: the app it would roll
// back to redacted too.
func (d Deployment) Redacted() Deployment {
	if d.Original != nil && len(d.Original.Env) > 0 {
		o := d.Original.Redacted()
		d.Original = &o
	}
	if slices.ContainsFunc(d.Originals, func(a App) bool { return len(a.Env) > 0 }) {
		os := make([]App, len(d.Originals))
		for i, a := range d.Originals {
			os[i] = a.Redacted()
		}
		d.Originals = os
	}
	return d
}

// holdsEnv reports whether the deployment carries an app's env.
func (d Deployment) holdsEnv() bool {
	return d.Original != nil && len(d.Original.Env) > 0 ||
		slices.ContainsFunc(d.Originals, func(a App) bool { return len(a.Env) > 0 })
}

// Redacted returns the event as NATS carries it. Records that hold no
// secret are shared with e, never changed.
func (e Event) Redacted() Event {
	switch e.Type {
	case GroupVersionAdded:
		// Followers keep no group versions: they get its name only,
		// so what a group change sends them does not grow with the group.
		e.GroupVersion = &GroupVersion{ID: e.GroupVersion.ID, Version: e.GroupVersion.Version}
		return e
	case AppKept:
		e.App = &App{ID: e.App.ID, Version: e.App.Version}
		return e
	}
	if e.App != nil && len(e.App.Env) > 0 {
		a := e.App.Redacted()
		e.App = &a
	}
	if e.Deployment != nil && e.Deployment.holdsEnv() {
		d := e.Deployment.Redacted()
		e.Deployment = &d
	}
	return e
}

// Redacted returns the state as NATS carries it. It shares its agent and
// task maps with s, and its app and deployment maps too when nothing needs
// hiding: it is for encoding (or for Clone), not for changing.
func (s *State) Redacted() *State {
	r := *s
	r.tasksByApp = nil
	r.AppVersions = nil // followers keep no history (DropVersions)
	r.GroupVersions, r.KeptApps = nil, nil
	if anyOf(s.Apps, func(a App) bool { return len(a.Env) > 0 }) {
		r.Apps = make(map[string]App, len(s.Apps))
		for id, a := range s.Apps {
			r.Apps[id] = a.Redacted()
		}
	}
	if anyOf(s.Deployments, Deployment.holdsEnv) {
		r.Deployments = make(map[string]Deployment, len(s.Deployments))
		for id, d := range s.Deployments {
			r.Deployments[id] = d.Redacted()
		}
	}
	return &r
}

// anyOf reports whether f holds for some value of m.
func anyOf[V any](m map[string]V, f func(V) bool) bool {
	for _, v := range m {
		if f(v) {
			return true
		}
	}
	return false
}
