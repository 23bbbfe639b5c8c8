package lbsync

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/templates"
)

// Render renders s from scratch: Render(s, cfg, set) is RenderNext(nil, ...).
func Render(s *events.State, cfg Config, set *templates.Set) (Result, error) {
	return RenderNext(nil, s, cfg, set)
}

// RenderNext renders the HAProxy config of state s for this node's group.
// Tasks keep the server slots they held in prev (nil for none). An app
// whose labels or per-port templates render something invalid is left out
// and reported in Result.Errors; the error return is only for the global
// templates (HAPROXY_HEAD and the :80/:443 frontends), where nothing valid
// can be rendered and the caller keeps the old config.
func RenderNext(prev *Result, s *events.State, cfg Config, set *templates.Set) (Result, error) {
	return renderNext(prev, s, cfg, set, nil, nil)
}

// renderNext is RenderNext that also leaves out the quarantined app ports
// whose definition is still the one `haproxy -c` rejected. touched, when
// not nil, holds every app whose tasks may differ from prev's, and says
// that no app definition changed.
func renderNext(prev *Result, s *events.State, cfg Config, set *templates.Set, q Quarantine, touched map[string]bool) (Result, error) {
	cfg = cfg.withDefaults()
	if res, ok := renderMembership(prev, s, cfg, set, q, touched); ok {
		return res, nil
	}
	r := &renderer{cfg: &cfg, set: set, prev: prev, quarantine: q}
	r.indexTasks(s, nil)
	res := Result{
		cache:       map[string]*appCache{},
		mapPath:     cfg.MapPath,
		pathMapPath: cfg.PathMapPath,
		set:         set,
		global: templates.Global{
			MaxConn: cfg.MaxConn, HardStopAfter: cfg.HardStopAfter, MaxReloads: cfg.MaxReloads,
			SocketPath: cfg.SocketPath, StatsBind: cfg.StatsBind, BindAddr: cfg.BindAddr,
			HTTPPort: cfg.HTTPPort, HTTPSPort: cfg.HTTPSPort,
			HostMapPath: cfg.MapPath, PathMapPath: cfg.PathMapPath,
		},
		defaultCert: cfg.DefaultCert,
		quarantined: len(q) > 0,
	}
	r.res = &res
	r.backends = map[string]bool{}
	r.hosts = map[string]string{}
	r.usedBinds = map[string]string{}
	r.usedPaths = map[string]string{}
	served := strings.Split(cfg.Group, ",")
	for i := range served {
		served[i] = strings.TrimSpace(served[i])
	}
	apps := s.SortedApps()
	outs := r.outputs(apps, served)
	for i := range apps {
		r.app(&apps[i], outs[i])
	}
	if err := res.assemble(); err != nil {
		return Result{}, err
	}
	return res, nil
}

type renderer struct {
	cfg   *Config
	set   *templates.Set
	prev  *Result
	res   *Result
	tasks map[string][]*events.Task // app id → running tasks on active agents, by id
	addr  map[string]string         // agent id → advertised IP

	quarantine Quarantine
	backends   map[string]bool   // backends taken so far
	hosts      map[string]string // vhost → backend
	usedBinds  map[string]string // bind addr:port → app id
	usedPaths  map[string]string // host+path → backend
}

// appPart is the rendered text of one port of an accepted app.
type appPart struct {
	frontend, backend string
	serverOpts        string
	b                 *Backend
}

// indexTasks indexes the tasks that may sit in backends, of every app, or
// of the apps in only (when not nil).
func (r *renderer) indexTasks(s *events.State, only map[string]bool) {
	r.tasks = make(map[string][]*events.Task, len(s.Apps))
	r.addr = make(map[string]string, len(s.Agents))
	for id, a := range s.Agents {
		if a.State == events.AgentActive {
			r.addr[id] = a.IP
		}
	}
	serves := func(t *events.Task) bool {
		if t.State != events.TaskRunning && t.State != events.TaskKilling {
			return false
		}
		_, ok := r.addr[t.AgentID]
		return ok
	}
	if only != nil {
		// A task change: the state's app → tasks index gives the few
		// tasks concerned without a walk over every task in the cluster.
		for appID := range only {
			ts := s.TasksOf(appID) // sorted by id
			for i := range ts {
				if t := &ts[i]; serves(t) {
					r.tasks[appID] = append(r.tasks[appID], t)
				}
			}
		}
		return
	}
	// One copy of each task, in one allocation; the index holds pointers,
	// so sorting moves 8 bytes, not a Task.
	all := make([]events.Task, 0, len(s.Tasks))
	for _, t := range s.Tasks {
		if serves(&t) {
			all = append(all, t)
		}
	}
	for i := range all {
		t := &all[i]
		r.tasks[t.AppID] = append(r.tasks[t.AppID], t)
	}
	for _, ts := range r.tasks {
		slices.SortFunc(ts, func(a, b *events.Task) int { return strings.Compare(a.ID, b.ID) })
	}
}

func healthy(t *events.Task) bool {
	if t.Healthy != nil {
		return *t.Healthy
	}
	if len(t.HealthCheckResults) == 0 {
		return false
	}
	for _, h := range t.HealthCheckResults {
		if !h.Alive {
			return false
		}
	}
	return true
}

func (r *renderer) targets(app *events.App, n int) []target {
	ts := r.tasks[app.ID]
	out := make([]target, 0, len(ts))
	for _, t := range ts {
		killing := t.State == events.TaskKilling
		if len(t.Ports) <= n || (!killing && len(app.HealthChecks) > 0 && !healthy(t)) {
			continue
		}
		addr := r.addr[t.AgentID]
		// A bridged task's own address is on its agent's bridge: it is
		// reached at its agent's, on its host ports (marathon-lb's task
		// host and ports for container/bridge networking).
		for _, ip := range t.IPAddresses {
			if ip.IPAddress != "" && !app.Bridged() {
				addr = ip.IPAddress
				break
			}
		}
		if addr == "" {
			addr = t.Host
		}
		out = append(out, target{taskID: t.ID, addr: addr, port: t.Ports[n], draining: killing})
	}
	return out
}

// portOut is the rendered text of one served port, before the slots.
type portOut struct {
	svc  *templates.Service
	part appPart
	acl  string
}

// appOut is what an app renders to on its own: a pure function of the app,
// the Config and the templates, so RenderNext reuses it from prev when
// none of those changed.
type appOut struct {
	ports []portOut
	err   *AppError
}

// appCache remembers an app's output with the inputs it came from.
type appCache struct {
	app events.App
	cfg Config
	set *templates.Set
	out appOut
}

// render renders every served port of app, or reports why it cannot.
func (r *renderer) render(app *events.App, served []string) appOut {
	var o appOut
	for n := range app.PortSpecs() { // a bridged app's: its port mappings
		if !inGroup(served, app.Labels, n) {
			continue
		}
		fail := func(err error) appOut {
			return appOut{err: &AppError{AppID: app.ID, PortIndex: n, Err: err.Error()}}
		}
		svc, err := service(app, n, r.cfg)
		if err != nil {
			return fail(err)
		}
		if svc == nil {
			continue
		}
		over, err := templates.ParseOverrides(app.Labels, n)
		if err != nil {
			return fail(err)
		}
		part, acl, err := r.port(svc, over)
		if err != nil {
			return fail(err)
		}
		if len(over) > 0 {
			if err := validatePart(part, acl); err != nil {
				return fail(err)
			}
		}
		o.ports = append(o.ports, portOut{svc: svc, part: part, acl: acl})
	}
	return o
}

// outputs returns each app's output, from prev's cache when its inputs
// are the same; the rest render in parallel (templates are safe for
// concurrent use, and render touches nothing shared).
func (r *renderer) outputs(apps []events.App, served []string) []appOut {
	outs := make([]appOut, len(apps))
	var todo []int
	for i := range apps {
		app := &apps[i]
		if r.prev != nil {
			if c := r.prev.cache[app.ID]; c != nil && c.set == r.set && c.cfg == *r.cfg && sameApp(&c.app, app) {
				r.res.cache[app.ID] = c
				outs[i] = c.out
				continue
			}
		}
		todo = append(todo, i)
	}
	workers := runtime.GOMAXPROCS(0)
	if len(todo) < 64 {
		workers = 1
	}
	var wg sync.WaitGroup
	chunk := (len(todo) + workers - 1) / workers
	for w := 0; w < workers && w*chunk < len(todo); w++ {
		part := todo[w*chunk : min((w+1)*chunk, len(todo))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, i := range part {
				outs[i] = r.render(&apps[i], served)
			}
		}()
	}
	wg.Wait()
	for _, i := range todo {
		r.res.cache[apps[i].ID] = &appCache{app: apps[i], cfg: *r.cfg, set: r.set, out: outs[i]}
	}
	return outs
}

// sameApp compares what rendering reads from an app.
func sameApp(a, b *events.App) bool {
	as, bs := a.PortSpecs(), b.PortSpecs()
	if a.ID != b.ID || !maps.Equal(a.Labels, b.Labels) || len(as) != len(bs) || a.Bridged() != b.Bridged() {
		return false
	}
	for i := range as {
		if as[i].Port != bs[i].Port {
			return false
		}
	}
	return reflect.DeepEqual(a.HealthChecks, b.HealthChecks)
}

// app commits an app's output, unless it collides with an app before it
// (same backend, bind or vhost), and assigns its slots.
func (r *renderer) app(app *events.App, o appOut) {
	if o.err != nil {
		r.res.Errors = append(r.res.Errors, *o.err)
		return
	}
	if q, ok := r.quarantine[app.ID]; ok && sameApp(&q.App, app) {
		kept := o.ports[:0:0]
		for _, p := range o.ports {
			if e, bad := q.Ports[p.svc.PortIndex]; bad {
				r.res.Errors = append(r.res.Errors, e)
				continue
			}
			kept = append(kept, p)
		}
		o.ports = kept
	}
	hosts := map[string]string{}
	paths := map[string]string{}
	binds := map[string]bool{}
	for _, p := range o.ports {
		svc := p.svc
		fail := func(err error) {
			r.res.Errors = append(r.res.Errors, AppError{AppID: app.ID, PortIndex: svc.PortIndex, Err: err.Error()})
		}
		if r.backends[svc.Backend] {
			fail(fmt.Errorf("backend %s is already used by another app", svc.Backend))
			return
		}
		if svc.ServicePort > 0 {
			bind := svc.BindAddr + ":" + itoa(svc.ServicePort)
			if other, dup := r.usedBinds[bind]; dup || binds[bind] {
				fail(fmt.Errorf("bind %s is already used by %s", bind, other))
				return
			}
			binds[bind] = true
		}
		for _, h := range svc.Vhosts {
			if svc.Path != "" {
				key := h + svc.Path
				if other, dup := r.usedPaths[key]; dup || paths[key] != "" {
					fail(fmt.Errorf("vhost path %s is already routed to %s", key, other))
					return
				}
				paths[key] = svc.Backend
				continue
			}
			if other, dup := r.hosts[h]; dup || hosts[h] != "" {
				fail(fmt.Errorf("vhost %s is already routed to %s", h, other))
				return
			}
			hosts[h] = svc.Backend
		}
	}
	// No collision: commit the app.
	for _, p := range o.ports {
		svc := p.svc
		var prevB *Backend
		if r.prev != nil {
			prevB = r.prev.Backends[svc.Backend]
		}
		c := committed{appID: app.ID, port: svc.PortIndex, part: p.part, acl: p.acl}
		c.part.b = &Backend{Name: svc.Backend, AppID: app.ID, PortIndex: svc.PortIndex,
			Slots: assignSlots(svc.Backend, prevB, r.targets(app, svc.PortIndex), r.cfg.SlotStep)}
		if svc.SSLCert != "" && len(svc.Vhosts) > 0 {
			c.cert = svc.SSLCert
		}
		for h, b := range hosts {
			if b == svc.Backend {
				c.hosts = append(c.hosts, h)
			}
		}
		for k, b := range paths {
			if b == svc.Backend {
				c.paths = append(c.paths, k)
			}
		}
		r.backends[svc.Backend] = true
		r.res.parts = append(r.res.parts, c)
	}
	for b := range binds {
		r.usedBinds[b] = app.ID
	}
	for h, b := range hosts {
		r.hosts[h] = b
	}
	for k, b := range paths {
		r.usedPaths[k] = b
	}
}

// port renders the frontend, backend and :80 lines of one service.
func (r *renderer) port(svc *templates.Service, o templates.Overrides) (appPart, string, error) {
	var p appPart
	var b strings.Builder
	exec := func(name string, data any) error {
		if err := r.set.ExecuteWith(&b, o, name, data); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	if svc.ServicePort > 0 {
		if err := exec(templates.FrontendHead, svc); err != nil {
			return p, "", err
		}
		if err := exec(templates.FrontendBackendGlue, svc); err != nil {
			return p, "", err
		}
		p.frontend = b.String()
		b.Reset()
	}
	if err := exec(templates.BackendHead, svc); err != nil {
		return p, "", err
	}
	if svc.Mode == "http" {
		if err := exec(templates.BackendHTTPOptions, svc); err != nil {
			return p, "", err
		}
	}
	if hc := svc.HealthCheck; hc != nil {
		name := templates.BackendTCPHealthcheckOptions
		if svc.Mode == "http" && hc.Protocol != "TCP" {
			name = templates.BackendHTTPHealthcheckOptions
		}
		if err := exec(name, svc); err != nil {
			return p, "", err
		}
	}
	p.backend = b.String()
	b.Reset()
	if err := exec(templates.BackendServerOptions, svc); err != nil {
		return p, "", err
	}
	p.serverOpts = strings.TrimRight(b.String(), "\n")
	if strings.ContainsAny(p.serverOpts, "\n") {
		return p, "", fmt.Errorf("%s renders more than one line", templates.BackendServerOptions)
	}
	b.Reset()
	for _, h := range svc.Vhosts {
		name := templates.HTTPFrontendACL
		if svc.Path != "" {
			name = templates.HTTPFrontendACLWithPath
		}
		n := b.Len()
		if err := exec(name, templates.Vhost{Service: *svc, Host: h}); err != nil {
			return p, "", err
		}
		// A vhost that renders nothing must not change the config text:
		// adding it is then a map update, not a reload.
		if strings.TrimSpace(b.String()[n:]) == "" {
			s := b.String()[:n]
			b.Reset()
			b.WriteString(s)
		}
	}
	return p, b.String(), nil
}

// validatePart parses an app's text with config-parser: it runs for apps
// that override templates, the only way an app can write arbitrary lines.
func validatePart(p appPart, acl string) error {
	text := "frontend atoll_check_http\n" + acl + p.frontend + p.backend +
		"  server atoll_check 127.0.0.1:1" + p.serverOpts + "\n"
	if err := Validate(text); err != nil {
		return fmt.Errorf("rendered config is invalid: %w", err)
	}
	return nil
}

// out writes the config and, except for server addresses and states, the
// structure hash.
type out struct {
	b       strings.Builder
	h       hash.Hash
	scratch []byte
}

func (o *out) write(s string) {
	o.b.WriteString(s)
	o.scratch = append(o.scratch[:0], s...)
	o.h.Write(o.scratch)
}

func (o *out) server(s Slot, opts string) {
	writeServer(&o.b, s, opts)
	o.scratch = append(append(append(append(o.scratch[:0], "server "...), s.Name...), opts...), '\n')
	o.h.Write(o.scratch)
}

// writeServer writes a slot's server line.
func writeServer(b *strings.Builder, s Slot, opts string) {
	b.WriteString("  server ")
	b.WriteString(s.Name)
	b.WriteByte(' ')
	if s.Free() {
		b.WriteString("127.0.0.1:1")
	} else {
		b.WriteString(s.Addr)
		b.WriteByte(':')
		b.WriteString(itoa(s.Port))
	}
	b.WriteString(opts)
	if s.Free() {
		b.WriteString(" disabled")
	}
	// A draining slot is written as a live server: the config has no
	// "drain" keyword, and "weight 0" would stay with the slot when the
	// runtime API later gives it to a new task. The applier drains it
	// again right after a reload (DrainingCommands).
	b.WriteByte('\n')
}

// assemble builds everything a Result derives from its committed parts:
// the config text and its structure hash, the backends and the map files.
// RenderNext calls it once; Without calls it again on fewer parts.
func (res *Result) assemble() error {
	var certs, rules []string
	if res.defaultCert != "" {
		certs = append(certs, res.defaultCert)
	}
	res.Backends = make(map[string]*Backend, len(res.parts))
	res.Hosts = map[string]string{}
	res.Paths = nil
	for _, c := range res.parts {
		if c.cert != "" {
			certs = append(certs, c.cert)
		}
		if c.acl != "" {
			rules = append(rules, c.acl)
		}
		res.Backends[c.part.b.Name] = c.part.b
		for _, h := range c.hosts {
			res.Hosts[h] = c.part.b.Name
		}
		for _, k := range c.paths {
			res.Paths = append(res.Paths, MapEntry{Key: k, Backend: c.part.b.Name})
		}
	}
	g := res.global
	g.Certs = dedup(certs)
	g.HTTPRules = strings.Join(rules, "")
	var head strings.Builder
	if err := res.set.Execute(&head, templates.Head, g); err != nil {
		return fmt.Errorf("%s: %w", templates.Head, err)
	}
	if err := res.set.Execute(&head, templates.HTTPFrontendHead, g); err != nil {
		return fmt.Errorf("%s: %w", templates.HTTPFrontendHead, err)
	}
	if len(g.Certs) > 0 {
		if err := res.set.Execute(&head, templates.HTTPSFrontendHead, g); err != nil {
			return fmt.Errorf("%s: %w", templates.HTTPSFrontendHead, err)
		}
	}
	o := &out{h: sha256.New()}
	size := head.Len()
	for _, c := range res.parts {
		p := &c.part
		size += len(p.frontend) + len(p.backend) + len(p.b.Slots)*(48+len(p.serverOpts))
	}
	o.b.Grow(size)
	o.write(head.String())
	res.headLines = strings.Count(head.String(), "\n")
	for i := range res.parts {
		c := &res.parts[i]
		p := &c.part
		o.write(p.frontend)
		o.write(p.backend)
		c.servers[0] = o.b.Len()
		for _, s := range p.b.Slots {
			o.server(s, p.serverOpts)
		}
		c.servers[1] = o.b.Len()
	}
	res.Config = o.b.String()
	copy(res.structure[:], o.h.Sum(nil))

	hosts := make([]string, 0, len(res.Hosts))
	for h := range res.Hosts {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var m strings.Builder
	for _, h := range hosts {
		m.WriteString(h + " " + res.Hosts[h] + "\n")
	}
	res.HostMap = m.String()
	sort.Slice(res.Paths, func(i, j int) bool {
		a, b := res.Paths[i].Key, res.Paths[j].Key
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	m.Reset()
	for _, e := range res.Paths {
		m.WriteString(e.Key + " " + e.Backend + "\n")
	}
	res.PathMap = m.String()
	return nil
}

func dedup(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
