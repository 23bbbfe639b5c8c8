package lbsync

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/r3labs/sse/v2"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/atollhq/atoll/client"
	"github.com/atollhq/atoll/events"
)

// MarathonSource follows any Marathon-compatible event stream (`--sse`): a
// real Marathon or an atoll master. Marathon's events carry no order and no
// replay, so every event that can change what HAProxy serves only marks
// the state dirty; the state itself is refetched from
// /v2/apps?embed=apps.tasks, at most once per MinInterval however many
// events arrive (marathon-lb refetches on every event). A reconnect
// refetches too: events may have been missed while disconnected.
type MarathonSource struct {
	// URL is the base URL of Marathon or the atoll master, http:// or
	// https://; user:password@ in it is sent as basic auth, to the leader
	// too when an atoll standby redirects the stream there.
	URL string
	// TLS verifies an https:// URL (its RootCAs: the cluster's CA). Nil:
	// the system's roots.
	TLS *tls.Config
	// HTTP is the client for the snapshot requests; the stream uses its
	// own connection. Default: 10 s timeout, with TLS.
	HTTP *http.Client
	// MinInterval bounds how often the state is refetched. Default 200 ms.
	MinInterval time.Duration
	Log         *slog.Logger
}

// refetchEvents are the Marathon event types after which the apps and
// tasks may have changed; atoll's "resync" asks for a refetch outright.
var refetchEvents = map[string]bool{
	"event_stream_attached": true, "status_update_event": true, "health_status_changed_event": true,
	"api_post_event": true, "app_terminated_event": true, "deployment_success": true,
	"deployment_failed": true, "deployment_step_success": true, "instance_changed_event": true,
	"resync": true,
}

// Run calls onState with the whole state after connecting and after every
// burst of relevant events, until ctx ends. onState runs on Run's
// goroutine and may keep the state.
func (m *MarathonSource) Run(ctx context.Context, onState func(*events.State)) error {
	base, err := url.Parse(strings.TrimRight(m.URL, "/"))
	if err != nil {
		return fmt.Errorf("sse source %q: %w", m.URL, err)
	}
	log := m.Log
	if log == nil {
		log = slog.Default()
	}
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: m.TLS.Clone(),
		TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: 90 * time.Second}
	defer transport.CloseIdleConnections()
	hc := m.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second, Transport: transport, CheckRedirect: client.FollowLeader}
	}
	interval := m.MinInterval
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}

	dirty := make(chan struct{}, 1)
	mark := func() {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}
	stream := sse.NewClient(base.String() + "/v2/events")
	stream.Connection = &http.Client{Transport: transport, CheckRedirect: client.FollowLeader}
	stream.OnConnect(func(*sse.Client) { mark() })
	// r3labs retries a failed stream for up to 15 minutes: stop with ctx,
	// and say why it failed (a 401, an unknown CA) instead of waiting
	// silently.
	stream.ReconnectStrategy = backoff.WithContext(backoff.NewExponentialBackOff(), ctx)
	stream.ReconnectNotify = func(err error, next time.Duration) {
		log.Warn("sse source: event stream failed, retrying", "in", next.Round(time.Millisecond), "err", err)
	}
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- stream.SubscribeRawWithContext(ctx, func(ev *sse.Event) {
			if refetchEvents[string(ev.Event)] {
				mark()
			}
		})
	}()

	var last time.Time
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			<-streamDone
			return nil
		case err := <-streamDone:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sse source %s: event stream: %w", base.Redacted(), err)
		case <-dirty:
		case <-retry.C:
		}
		if wait := interval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				<-streamDone
				return nil
			case <-time.After(wait):
			}
		}
		last = time.Now()
		st, err := fetchMarathonState(ctx, hc, base)
		if err != nil {
			log.Warn("sse source: refetch failed, retrying", "err", err)
			retry.Reset(time.Second)
			continue
		}
		onState(st)
	}
}

// marathonApp is an app of GET /v2/apps?embed=apps.tasks: atoll's records
// use Marathon's field names, so they decode as they are.
type marathonApp struct {
	events.App
	Tasks []events.Task `json:"tasks"`
}

// UnmarshalJSON reads only what the load balancer renders from an app
// (sameApp: its id, labels, ports, networks and health checks) and its
// tasks. The rest of an app's JSON varies between Marathon versions and
// servers (env holds secret references as objects, unreachableStrategy
// may be "disabled"), and one app in a shape a full decode did not expect
// made the whole of /v2/apps undecodable, holding the load balancer on a
// stale configuration.
func (m *marathonApp) UnmarshalJSON(data []byte) error {
	var v struct {
		ID              string                  `json:"id"`
		Labels          map[string]string       `json:"labels"`
		PortDefinitions []events.PortDefinition `json:"portDefinitions"`
		HealthChecks    []events.HealthCheck    `json:"healthChecks"`
		Container       *struct {
			Type         string               `json:"type"`
			PortMappings []events.PortMapping `json:"portMappings"`
		} `json:"container"`
		Networks []events.Network `json:"networks"`
		Tasks    []events.Task    `json:"tasks"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*m = marathonApp{
		App: events.App{ID: v.ID, Labels: v.Labels, PortDefinitions: v.PortDefinitions,
			HealthChecks: v.HealthChecks, Networks: v.Networks},
		Tasks: v.Tasks,
	}
	if c := v.Container; c != nil {
		m.Container = &events.Container{Type: c.Type, PortMappings: c.PortMappings}
	}
	return nil
}

func fetchMarathonState(ctx context.Context, hc *http.Client, base *url.URL) (*events.State, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+"/v2/apps?embed=apps.tasks", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch apps: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch apps: %s", resp.Status)
	}
	var body struct {
		Apps []marathonApp `json:"apps"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("fetch apps: decode: %w", err)
	}
	return StateFromMarathon(body.Apps), nil
}

// StateFromMarathon builds the state the renderer needs from Marathon's
// apps and tasks. Agents are not in Marathon's API: each task's agent is
// made from its slaveId, host and first address. A task without a state
// (Marathon before 1.4) that has started counts as running; health is
// Marathon's when the task has no "healthy" field: every check alive.
func StateFromMarathon(apps []marathonApp) *events.State {
	st := events.NewState()
	for _, a := range apps {
		st.Apps[a.ID] = a.App
		for _, t := range a.Tasks {
			if t.AppID == "" {
				t.AppID = a.ID
			}
			if t.State == "" && t.StartedAt != nil {
				t.State = events.TaskRunning
			}
			if t.Healthy == nil && len(a.HealthChecks) > 0 {
				healthy := len(t.HealthCheckResults) > 0
				for _, r := range t.HealthCheckResults {
					healthy = healthy && r.Alive
				}
				t.Healthy = &healthy
			}
			if t.AgentID == "" {
				t.AgentID = t.Host
			}
			if _, ok := st.Agents[t.AgentID]; !ok {
				ip := t.Host
				// A bridged task's address is its container's, not its
				// agent's.
				if len(t.IPAddresses) > 0 && !a.Bridged() {
					ip = t.IPAddresses[0].IPAddress
				}
				st.Agents[t.AgentID] = events.Agent{ID: t.AgentID, Hostname: t.Host, IP: ip, State: events.AgentActive}
			}
			st.Tasks[t.ID] = t
		}
	}
	return st
}
