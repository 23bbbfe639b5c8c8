package lbsync

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/atollhq/atoll/events"
)

// One app's bad labels must not stop every update, as they do in
// marathon-lb: when `haproxy -c` rejects a config, Blame finds the app
// ports its ALERT lines point at, Without assembles the config again
// without them, and the Syncer keeps them in a Quarantine until their
// definition changes.

// Quarantine holds the app ports `haproxy -c` rejected, by app id, with
// the app definition that was rejected: a render leaves those ports out
// while the app is still defined that way.
type Quarantine map[string]Quarantined

// Quarantined is one app's rejected ports (port index → why).
type Quarantined struct {
	App   events.App
	Ports map[int]AppError
}

// Alert is one ALERT line of `haproxy -c`, with what it points at: a line
// of a file and/or a proxy (frontend, backend or listen) by name.
type Alert struct {
	File  string
	Line  int
	Proxy string
	Msg   string
}

var (
	alertLineRE  = regexp.MustCompile(`\[([^\[\]]+):(\d+)\]`)
	alertProxyRE = regexp.MustCompile(`(?i)\b(?:proxy|frontend|backend|listen) '([^']+)'`)
	alertServeRE = regexp.MustCompile(`'server ([^/']+)/[^']*'`)
)

// ParseAlerts reads the ALERT lines of HAProxy's output, e.g.
//
//	[ALERT]    (5502) : config : parsing [/etc/haproxy/haproxy.cfg:9] : 'bind ...' unknown keyword 'x'.
//	[ALERT]    (5707) : config : Proxy 'fe2': unable to find required use_backend: 'nope'.
//
// The summary lines ("Error(s) found ...", "Fatal errors found ...") point
// at nothing and are skipped.
func ParseAlerts(output string) []Alert {
	var out []Alert
	for _, line := range strings.Split(output, "\n") {
		_, rest, ok := strings.Cut(line, "[ALERT]")
		if !ok {
			continue
		}
		// Skip "(pid) : config : " to keep the message.
		msg := strings.TrimSpace(rest)
		if i := strings.Index(msg, ") : "); strings.HasPrefix(msg, "(") && i > 0 {
			msg = msg[i+4:]
		}
		msg = strings.TrimPrefix(msg, "config : ")
		if strings.HasPrefix(msg, "Error(s) found in configuration file") || strings.HasPrefix(msg, "Fatal errors found") {
			continue
		}
		a := Alert{Msg: msg}
		if m := alertLineRE.FindStringSubmatch(msg); m != nil {
			a.File = m[1]
			a.Line, _ = strconv.Atoi(m[2])
		}
		if m := alertProxyRE.FindStringSubmatch(msg); m != nil {
			a.Proxy = m[1]
		} else if m := alertServeRE.FindStringSubmatch(msg); m != nil {
			a.Proxy = m[1]
		}
		out = append(out, a)
	}
	return out
}

// Blame maps the alerts of a `haproxy -c` run on this Result's config
// (written at path) to the app ports whose text they point at. unblamed
// are the alerts that point at no app (the head, or nothing at all): with
// no app blamed, the fault is global.
func (r *Result) Blame(alerts []Alert, path string) (blamed []AppError, unblamed []Alert) {
	seen := map[[2]string]bool{}
	for _, a := range alerts {
		i := -1
		if a.Line > 0 && (path == "" || a.File == path) {
			i = r.partAtLine(a.Line)
		}
		if i < 0 && a.Proxy != "" {
			i = r.partOfProxy(a.Proxy)
		}
		if i < 0 {
			unblamed = append(unblamed, a)
			continue
		}
		c := &r.parts[i]
		key := [2]string{c.appID, strconv.Itoa(c.port)}
		if seen[key] {
			continue
		}
		seen[key] = true
		blamed = append(blamed, AppError{AppID: c.appID, PortIndex: c.port, Err: "rejected by haproxy -c: " + alertText([]Alert{a}, path)})
	}
	return blamed, unblamed
}

// partAtLine is the index of the part that holds config line n (1-based),
// or -1. Lines of the head are matched by text against the apps' :80
// frontend rules, the only app text the head carries.
func (r *Result) partAtLine(n int) int {
	line := r.headLines
	if n <= line {
		text := strings.TrimSpace(nthLine(r.Config, n))
		if text == "" {
			return -1
		}
		for i, c := range r.parts {
			for _, l := range strings.Split(c.acl, "\n") {
				if strings.TrimSpace(l) == text {
					return i
				}
			}
		}
		return -1
	}
	for i, c := range r.parts {
		p := &c.part
		line += strings.Count(p.frontend, "\n") + strings.Count(p.backend, "\n") + len(p.b.Slots)
		if n <= line {
			return i
		}
	}
	return -1
}

// partOfProxy is the index of the part that declares proxy name, or -1.
func (r *Result) partOfProxy(name string) int {
	for i, c := range r.parts {
		if c.part.b.Name == name {
			return i
		}
		for _, text := range []string{c.part.frontend, c.part.backend} {
			for _, l := range strings.Split(text, "\n") {
				f := strings.Fields(l)
				if len(f) >= 2 && f[1] == name && (f[0] == "frontend" || f[0] == "backend" || f[0] == "listen") {
					return i
				}
			}
		}
	}
	return -1
}

func nthLine(s string, n int) string {
	for i := 1; i < n; i++ {
		j := strings.IndexByte(s, '\n')
		if j < 0 {
			return ""
		}
		s = s[j+1:]
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Without is r assembled again without the given app ports, which join
// its Errors. The slots of every other backend are r's.
func (r *Result) Without(left []AppError) (Result, error) {
	out := *r
	out.parts = slices.DeleteFunc(slices.Clone(r.parts), func(c committed) bool {
		return slices.ContainsFunc(left, func(e AppError) bool {
			return e.AppID == c.appID && (e.PortIndex < 0 || e.PortIndex == c.port)
		})
	})
	out.Errors = append(slices.Clone(r.Errors), left...)
	if err := out.assemble(); err != nil {
		return Result{}, err
	}
	return out, nil
}

// app is the definition of appID that r was rendered from.
func (r *Result) app(appID string) (events.App, bool) {
	c := r.cache[appID]
	if c == nil {
		return events.App{}, false
	}
	return c.app, true
}

// alertText joins the alerts' messages for people, with the checked
// file's (temporary) name replaced by "haproxy.cfg".
func alertText(alerts []Alert, path string) string {
	msgs := make([]string, 0, len(alerts))
	for _, a := range alerts {
		if path != "" {
			a.Msg = strings.ReplaceAll(a.Msg, path, "haproxy.cfg")
		}
		msgs = append(msgs, a.Msg)
	}
	if len(msgs) == 0 {
		return "no ALERT line"
	}
	return strings.Join(msgs, "; ")
}
