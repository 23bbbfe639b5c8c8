package templates

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
)

//go:embed default/HAPROXY_*
var defaults embed.FS

// Template names, as marathon-lb's.
const (
	Head                          = "HAPROXY_HEAD"
	HTTPFrontendHead              = "HAPROXY_HTTP_FRONTEND_HEAD"
	HTTPSFrontendHead             = "HAPROXY_HTTPS_FRONTEND_HEAD"
	FrontendHead                  = "HAPROXY_FRONTEND_HEAD"
	FrontendBackendGlue           = "HAPROXY_FRONTEND_BACKEND_GLUE"
	BackendHead                   = "HAPROXY_BACKEND_HEAD"
	BackendHTTPOptions            = "HAPROXY_BACKEND_HTTP_OPTIONS"
	BackendServerOptions          = "HAPROXY_BACKEND_SERVER_OPTIONS"
	HTTPFrontendACL               = "HAPROXY_HTTP_FRONTEND_ACL"
	HTTPFrontendACLWithPath       = "HAPROXY_HTTP_FRONTEND_ACL_WITH_PATH"
	BackendHTTPHealthcheckOptions = "HAPROXY_BACKEND_HTTP_HEALTHCHECK_OPTIONS"
	BackendTCPHealthcheckOptions  = "HAPROXY_BACKEND_TCP_HEALTHCHECK_OPTIONS"
)

// Names lists every template name, in the order above.
var Names = []string{
	Head, HTTPFrontendHead, HTTPSFrontendHead, FrontendHead, FrontendBackendGlue,
	BackendHead, BackendHTTPOptions, BackendServerOptions, HTTPFrontendACL,
	HTTPFrontendACLWithPath, BackendHTTPHealthcheckOptions, BackendTCPHealthcheckOptions,
}

// Global-only templates cannot be overridden per app port.
var global = map[string]bool{Head: true, HTTPFrontendHead: true, HTTPSFrontendHead: true}

// Set is a parsed set of templates, one per name. A Set is read-only after
// Load and safe for concurrent use.
type Set struct {
	t      map[string]*template.Template
	source map[string]string // name → "default" or the file it came from
}

// Known reports whether name is a template name.
func Known(name string) bool {
	_, err := defaults.Open("default/" + name)
	return err == nil
}

// PerPort reports whether name may be overridden for one app port by a
// HAPROXY_{n}_<NAME> label.
func PerPort(name string) bool { return Known(name) && !global[name] }

// Default returns the embedded text of a template.
func Default(name string) (string, error) {
	b, err := defaults.ReadFile("default/" + name)
	if err != nil {
		return "", fmt.Errorf("templates: unknown template %q", name)
	}
	return string(b), nil
}

// Load returns the embedded defaults, each replaced by a file of the same
// name in dir when there is one. An empty dir loads the defaults only.
// Parse errors name the template, its source and the line.
func Load(dir string) (*Set, error) {
	s := &Set{t: make(map[string]*template.Template, len(Names)), source: make(map[string]string, len(Names))}
	var errs []error
	for _, name := range Names {
		text, err := Default(name)
		if err != nil {
			return nil, err
		}
		src := "default"
		if dir != "" {
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			switch {
			case err == nil:
				text, src = string(b), p
			case !errors.Is(err, fs.ErrNotExist):
				errs = append(errs, fmt.Errorf("templates: %s: %w", name, err))
				continue
			}
		}
		t, err := Parse(name, text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w (from %s)", err, src))
			continue
		}
		s.t[name], s.source[name] = t, src
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// MustDefault returns the embedded defaults; it panics only if they do not
// parse, which the package tests rule out.
func MustDefault() *Set {
	s, err := Load("")
	if err != nil {
		panic(err)
	}
	return s
}

// Parse parses one template. Errors read "template: NAME:LINE: ...".
func Parse(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Source says where a template came from: "default" or a file path.
func (s *Set) Source(name string) string { return s.source[name] }

// Template returns the parsed template for name, or nil.
func (s *Set) Template(name string) *template.Template { return s.t[name] }

// Execute renders template name with data into b.
func (s *Set) Execute(b *strings.Builder, name string, data any) error {
	t := s.t[name]
	if t == nil {
		return fmt.Errorf("templates: unknown template %q", name)
	}
	return t.Execute(b, data)
}

// Overrides are per-port replacements parsed from labels, keyed by name.
type Overrides map[string]*template.Template

// ParseOverrides parses every HAPROXY_{n}_<NAME> label for port n. Unknown
// names are ignored (they are ordinary labels); a global template name is
// an error, as is a parse error.
func ParseOverrides(labels map[string]string, n int) (Overrides, error) {
	prefix := fmt.Sprintf("HAPROXY_%d_", n)
	var o Overrides
	var keys []string
	for k := range labels {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := "HAPROXY_" + strings.TrimPrefix(k, prefix)
		if !Known(name) {
			continue
		}
		if global[name] {
			return nil, fmt.Errorf("label %s: %s cannot be overridden per port", k, name)
		}
		t, err := Parse(name, labels[k])
		if err != nil {
			return nil, fmt.Errorf("label %s: %w", k, err)
		}
		if o == nil {
			o = Overrides{}
		}
		o[name] = t
	}
	return o, nil
}

// ExecuteWith renders name from o when it overrides name, else from s.
func (s *Set) ExecuteWith(b *strings.Builder, o Overrides, name string, data any) error {
	if t := o[name]; t != nil {
		return t.Execute(b, data)
	}
	return s.Execute(b, name, data)
}
