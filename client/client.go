// Package client is a small typed client for atoll's Marathon v2-compatible
// HTTP API (and the Mesos-style /master/state). The atoll CLI uses it; it
// works against Marathon itself too, since it only relies on Marathon's
// documented JSON shapes.
//
// The base URL may carry credentials ("http://user:pass@host:8080"): they
// are sent as HTTP basic auth on every request and never appear in errors.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds how much of a response the client reads.
const maxBody = 64 << 20

// Client talks to one master (any master: standbys proxy to the leader).
type Client struct {
	base    *url.URL // scheme, host and optional path prefix; no user info
	user    string
	pass    string
	auth    bool
	hc      *http.Client
	baseErr error
}

// New returns a client for the API at baseURL, for example
// "http://127.0.0.1:8080" or "http://user:pass@master:8080". A URL without a
// scheme gets "http://". httpClient nil means a client with a 30s timeout.
// A malformed baseURL is reported by every call.
func New(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	c := &Client{hc: httpClient}
	raw := strings.TrimSpace(baseURL)
	if raw != "" && !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		// url.Parse errors quote the URL, credentials included: don't.
		c.baseErr = fmt.Errorf("invalid master URL %q", redact(raw))
		return c
	case u.Scheme != "http" && u.Scheme != "https":
		c.baseErr = fmt.Errorf("invalid master URL %q: scheme must be http or https", redact(raw))
		return c
	case u.Host == "":
		c.baseErr = fmt.Errorf("invalid master URL %q: no host", redact(raw))
		return c
	}
	if u.User != nil {
		c.user = u.User.Username()
		c.pass, _ = u.User.Password()
		c.auth = true
		u.User = nil
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.RawQuery = ""
	u.Fragment = ""
	c.base = u
	return c
}

// UseCredentials sends user and pass as basic auth from now on, in place
// of any the base URL carried.
func (c *Client) UseCredentials(user, pass string) {
	c.user, c.pass, c.auth = user, pass, true
}

// BaseURL is the API's base URL without credentials.
func (c *Client) BaseURL() string {
	if c.base == nil {
		return ""
	}
	return c.base.String()
}

func redact(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	if at := strings.LastIndex(rest, "@"); at >= 0 && !strings.ContainsAny(rest[:at], "/?#") {
		return raw[:i+3] + "xxxxx@" + rest[at+1:]
	}
	return raw
}

// ErrorDetail is one entry of a 422 response: a JSON path in the submitted
// document and what is wrong with it.
type ErrorDetail struct {
	Path   string   `json:"path"`
	Errors []string `json:"errors"`
}

// APIError is a non-2xx answer, decoded from Marathon's error bodies:
// {"message": "..."}, and for invalid apps (422)
// {"message": "Object is not valid", "details": [{"path": "/id", "errors": ["..."]}]}.
// A 409 (app locked by a deployment) lists the deployments.
type APIError struct {
	Status      int
	Message     string
	Details     []ErrorDetail
	Deployments []DeploymentRef
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Message == "" {
		b.WriteString(http.StatusText(e.Status))
	}
	fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	for i, d := range e.Details {
		if i == 0 {
			b.WriteString(":")
		} else {
			b.WriteString(";")
		}
		for j, msg := range d.Errors {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s: %s", d.Path, msg)
		}
		if len(d.Errors) == 0 {
			fmt.Fprintf(&b, " %s", d.Path)
		}
	}
	return b.String()
}

// IsNotFound reports whether err is an API 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// StatusOf returns the HTTP status of an *APIError in err's chain, 0 for
// other errors (network, decoding) and nil.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func decodeError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var doc struct {
		Message     *string         `json:"message"`
		Details     json.RawMessage `json:"details"`
		Deployments []DeploymentRef `json:"deployments"`
		// Marathon 0.x validation errors.
		Errors []struct {
			Attribute string `json:"attribute"`
			Error     string `json:"error"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil {
		if doc.Message != nil {
			e.Message = *doc.Message
		}
		e.Deployments = doc.Deployments
		if len(doc.Details) > 0 {
			var details []ErrorDetail
			if json.Unmarshal(doc.Details, &details) == nil {
				e.Details = details
			} else {
				// Some servers send a free-form details value: keep it readable.
				e.Details = []ErrorDetail{{Path: "/", Errors: []string{string(doc.Details)}}}
			}
		}
		for _, ve := range doc.Errors {
			p := ve.Attribute
			if !strings.HasPrefix(p, "/") {
				p = "/" + p
			}
			e.Details = append(e.Details, ErrorDetail{Path: p, Errors: []string{ve.Error}})
		}
		if e.Message == "" && len(e.Details) > 0 {
			e.Message = "Object is not valid"
		}
	}
	if e.Message == "" {
		text := strings.TrimSpace(string(body))
		if len(text) > 300 {
			text = text[:300] + "..."
		}
		if text == "" || strings.HasPrefix(text, "<") || strings.HasPrefix(text, "{") {
			text = http.StatusText(status)
		}
		e.Message = text
	}
	return e
}

// Do sends one request to path (relative to the base URL, starting with
// "/") and decodes a 2xx JSON answer into out (nil: discard; a
// *json.RawMessage receives the body unchanged). Non-2xx answers are
// returned as *APIError. The typed methods are built on it.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	_, err := c.do(ctx, method, path, query, body, out)
	return err
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) (http.Header, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	u := *c.base
	u.Path = c.base.Path + path // String() escapes it
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error repeats the URL; ours has no credentials, but keep
			// the message short: "GET http://...: connection refused".
			return nil, fmt.Errorf("%s %s: %w", method, u.Redacted(), ue.Err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading response: %w", method, u.Redacted(), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, decodeError(resp.StatusCode, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: decoding response: %w", method, u.Redacted(), err)
		}
	}
	return resp.Header, nil
}

// appPath is /v2/apps/<id without its leading slash>, plus suffix.
func appPath(id, suffix string) (string, error) {
	id = strings.Trim(id, "/")
	if id == "" {
		return "", errors.New("empty app id")
	}
	return "/v2/apps/" + id + suffix, nil
}

// NormalizeAppID returns id as an absolute Marathon app id ("/group/app").
func NormalizeAppID(id string) string {
	return "/" + strings.Trim(strings.TrimSpace(id), "/")
}

func forceQuery(force bool) url.Values {
	if !force {
		return nil
	}
	return url.Values{"force": {"true"}}
}

// Embeds asked for with every app read: tasks, plus the counts and the
// deployment ids that Marathon 1.x returns by default anyway.
var (
	appsEmbed = url.Values{"embed": {"apps.tasks", "apps.counts", "apps.deployments"}}
	appEmbed  = url.Values{"embed": {"app.tasks", "app.counts", "app.deployments"}}
)

// Apps lists every app with its tasks (GET /v2/apps?embed=apps.tasks).
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	var out struct {
		Apps []App `json:"apps"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v2/apps", appsEmbed, nil, &out); err != nil {
		return nil, err
	}
	return out.Apps, nil
}

// App returns one app with its tasks (GET /v2/apps/{id}?embed=app.tasks).
// An unknown app is an *APIError with Status 404 (see IsNotFound).
func (c *Client) App(ctx context.Context, id string) (App, error) {
	p, err := appPath(id, "")
	if err != nil {
		return App{}, err
	}
	var out struct {
		App *App `json:"app"`
	}
	if err := c.Do(ctx, http.MethodGet, p, appEmbed, nil, &out); err != nil {
		return App{}, err
	}
	if out.App == nil {
		return App{}, fmt.Errorf("GET %s: response has no \"app\"", p)
	}
	return *out.App, nil
}

// CreateApp posts an app definition (POST /v2/apps). Marathon answers 201
// with the app; its Deployments name the deployment that starts it.
// Location is the Location header of the answer, when there is one.
func (c *Client) CreateApp(ctx context.Context, appJSON []byte) (app App, location string, err error) {
	h, err := c.do(ctx, http.MethodPost, "/v2/apps", nil, appJSON, &app)
	if err != nil {
		return App{}, "", err
	}
	return app, h.Get("Location"), nil
}

// DeploymentResult is Marathon's answer to a change that starts a deployment.
type DeploymentResult struct {
	DeploymentID string `json:"deploymentId"`
	Version      string `json:"version"`
}

func (c *Client) change(ctx context.Context, method, id, suffix string, force bool, body []byte) (string, string, error) {
	p, err := appPath(id, suffix)
	if err != nil {
		return "", "", err
	}
	var out DeploymentResult
	if err := c.Do(ctx, method, p, forceQuery(force), body, &out); err != nil {
		return "", "", err
	}
	return out.DeploymentID, out.Version, nil
}

// UpdateApp changes (or creates) an app with a full or partial definition
// (PUT /v2/apps/{id}?force=). force overrides a deployment that holds the app.
func (c *Client) UpdateApp(ctx context.Context, id string, appJSON []byte, force bool) (deploymentID, version string, err error) {
	return c.change(ctx, http.MethodPut, id, "", force, appJSON)
}

// ScaleApp sets the number of instances (PUT /v2/apps/{id} {"instances": n}).
func (c *Client) ScaleApp(ctx context.Context, id string, instances int, force bool) (deploymentID, version string, err error) {
	if instances < 0 {
		return "", "", fmt.Errorf("instances must be >= 0, not %d", instances)
	}
	body := []byte(`{"instances":` + strconv.Itoa(instances) + `}`)
	return c.change(ctx, http.MethodPut, id, "", force, body)
}

// RestartApp replaces every task of the app (POST /v2/apps/{id}/restart).
func (c *Client) RestartApp(ctx context.Context, id string, force bool) (deploymentID, version string, err error) {
	return c.change(ctx, http.MethodPost, id, "/restart", force, nil)
}

// DeleteApp destroys the app and kills its tasks (DELETE /v2/apps/{id}).
func (c *Client) DeleteApp(ctx context.Context, id string, force bool) (deploymentID, version string, err error) {
	return c.change(ctx, http.MethodDelete, id, "", force, nil)
}

// Tasks lists every task (GET /v2/tasks).
func (c *Client) Tasks(ctx context.Context) ([]Task, error) {
	var out struct {
		Tasks []Task `json:"tasks"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v2/tasks", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Tasks, nil
}

// AppTasks lists the tasks of one app (GET /v2/apps/{id}/tasks).
func (c *Client) AppTasks(ctx context.Context, id string) ([]Task, error) {
	p, err := appPath(id, "/tasks")
	if err != nil {
		return nil, err
	}
	var out struct {
		Tasks []Task `json:"tasks"`
	}
	if err := c.Do(ctx, http.MethodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Tasks, nil
}

// Deployments lists the deployments in progress (GET /v2/deployments).
func (c *Client) Deployments(ctx context.Context) ([]Deployment, error) {
	var out []Deployment
	if err := c.Do(ctx, http.MethodGet, "/v2/deployments", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// State returns the Mesos-style cluster state (GET /master/state).
func (c *Client) State(ctx context.Context) (State, error) {
	var out State
	err := c.Do(ctx, http.MethodGet, "/master/state", nil, nil, &out)
	return out, err
}

// Info returns Marathon's /v2/info.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var out Info
	err := c.Do(ctx, http.MethodGet, "/v2/info", nil, nil, &out)
	return out, err
}

// Leader returns the leader's "host:port" (GET /v2/leader).
func (c *Client) Leader(ctx context.Context) (string, error) {
	var out struct {
		Leader string `json:"leader"`
	}
	err := c.Do(ctx, http.MethodGet, "/v2/leader", nil, nil, &out)
	return out.Leader, err
}
