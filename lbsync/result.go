package lbsync

import (
	"time"

	"github.com/atollhq/atoll/templates"
)

// Result is one render: everything the applier writes or sends.
type Result struct {
	// Config is the haproxy.cfg text, server slots included (so that a
	// reload keeps the current membership).
	Config string
	// HostMap and PathMap are the contents of Config.MapPath and
	// Config.PathMapPath; Hosts and Paths are the same, as data.
	HostMap string
	PathMap string
	Hosts   map[string]string // host → backend
	Paths   []MapEntry        // host+path prefix → backend, longest first
	// Backends are the server slots of every backend, by backend name.
	Backends map[string]*Backend
	// Errors are the apps (or app ports) left out of this render.
	Errors []AppError

	mapPath, pathMapPath string
	// structure hashes the config without the server addresses and states:
	// two renders with the same structure differ only in slot membership.
	structure [32]byte
	// cache holds each app's rendered text for the next RenderNext.
	cache map[string]*appCache

	// parts are the app ports in the config, in order, and set, global
	// and defaultCert what the head renders from: enough for Without to
	// assemble the config again with fewer apps, and for Blame to tell
	// whose line an error is on.
	parts       []committed
	set         *templates.Set
	global      templates.Global
	defaultCert string
	headLines   int // lines of the head (global, defaults, :80/:443)
	// quarantined is set when the render left out quarantined ports:
	// the next render cannot take the membership-only shortcut.
	quarantined bool
	// eventTimes are when the cluster events this render follows
	// happened (or, without events, when the state arrived): the Syncer
	// observes the event→applied latency from them.
	eventTimes []time.Time
}

// committed is one app port accepted into the config.
type committed struct {
	appID string
	port  int
	part  appPart
	acl   string   // its lines in the :80 frontend
	cert  string   // its certificate, for the :443 frontend
	hosts []string // its exact vhosts (host map keys)
	paths []string // its host+path prefixes (path map keys)
	// servers is where its server lines are in Result.Config (byte
	// offsets, end excluded): a render that only moves tasks rewrites
	// those lines and copies the rest.
	servers [2]int
}

// Set is the template set the Result was rendered with.
func (r *Result) Set() *templates.Set { return r.set }

// MapEntry is one line of a map file.
type MapEntry struct {
	Key, Backend string
}

// Backend is one backend's slots. Slot i is named "<Name>-<i+1>".
type Backend struct {
	Name      string
	AppID     string
	PortIndex int
	Slots     []Slot
}

// Slot is one pre-allocated server. A free slot has no TaskID and is
// disabled (maint) in HAProxy.
type Slot struct {
	Name   string
	TaskID string
	Addr   string
	Port   int
	// Draining is set while the task is being killed (TASK_KILLING): HAProxy
	// finishes its connections and sends it no new ones.
	Draining bool
}

// Free reports whether no task holds the slot.
func (s Slot) Free() bool { return s.TaskID == "" }

// AppError says why an app port was left out; PortIndex is -1 when the
// whole app was.
type AppError struct {
	AppID     string
	PortIndex int
	Err       string
}

func (e AppError) Error() string {
	if e.PortIndex < 0 {
		return e.AppID + ": " + e.Err
	}
	return e.AppID + " port " + itoa(e.PortIndex) + ": " + e.Err
}

// Slot returns the task in a named slot, for tests and the applier.
func (r *Result) Slot(backend, slot string) (Slot, bool) {
	b := r.Backends[backend]
	if b == nil {
		return Slot{}, false
	}
	for _, s := range b.Slots {
		if s.Name == slot {
			return s, true
		}
	}
	return Slot{}, false
}
