// Package master is atoll's leader: it owns the cluster state, schedules
// tasks onto agents, and serves the Marathon-compatible HTTP API. Agents
// and sidecars reach it only over NATS (and HTTP); it imports neither.
package master

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/natsbus"
)

// Config is what a master needs to run.
type Config struct {
	// Profiling serves Go's profiles at /debug/pprof/ on the API, behind
	// its credentials like every other path (off unless asked).
	Profiling bool
	NC        *nats.Conn
	Subjects  events.Subjects
	// Store keeps the state of a master that always leads. With ZK set
	// it must be nil: the state then lives in ZooKeeper.
	Store Store
	// ZK, if set, puts a ZooKeeper election in front of the leader work.
	ZK *ZKConfig
	// HTTPAddr is where the API listens; empty means no HTTP server.
	HTTPAddr string
	// Listener, if set, is used instead of listening on HTTPAddr.
	Listener net.Listener
	// AgentTimeout is how long an agent may go without a heartbeat
	// before it is unreachable. Default 15s.
	AgentTimeout time.Duration
	// TaskLaunchTimeout is how long a task may take from staging to
	// running before it is killed and counts as a failure (Marathon's
	// task_launch_timeout). Default DefaultTaskLaunchTimeout.
	TaskLaunchTimeout time.Duration
	// KillDrainDelay is how long a running task stays TASK_KILLING before
	// its agent is told to SIGTERM it: load balancers and DNS take it out
	// of rotation on TASK_KILLING, so no new request reaches a process
	// that is shutting down. Zero means DefaultKillDrainDelay; negative
	// means no delay.
	KillDrainDelay time.Duration
	// MaxInstancesPerApp bounds an app's instances at the API (a 422 for
	// more). Zero means DefaultMaxInstancesPerApp.
	MaxInstancesPerApp int
	// MaxAppVersions is how many definitions of an app the master keeps
	// for /v2/apps/{id}/versions and rollback (Marathon's
	// --zk_max_versions). Zero means DefaultMaxAppVersions.
	MaxAppVersions int
	// HTTPCredentials ("user:password"), if set, guards every API call
	// but the liveness checks, reads included (see http_guard.go).
	HTTPCredentials string
	// HTTPCORSOrigins are the foreign origins ("https://ui.example.com")
	// whose web pages may call the API: they get CORS headers and may
	// make changes. Others get no CORS headers and their changes are
	// refused.
	HTTPCORSOrigins []string
	// TLS, if set, serves the API over HTTPS on HTTPAddr (or Listener)
	// with its certificates; every master of a cluster must then serve
	// HTTPS, since standbys forward and redirect to the leader with it.
	TLS *tls.Config
	// PeerTLS verifies the leader when a standby forwards a call to it
	// over HTTPS (its RootCAs: the cluster's CA). Nil: the system's roots.
	PeerTLS  *tls.Config
	ID       string
	Hostname string
	// Version is what the API reports as the build version.
	Version string
	Log     *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Master is one master process. Only the leader schedules and writes.
type Master struct {
	cfg Config
	log *slog.Logger
	pub *natsbus.Publisher

	mu    sync.RWMutex
	state *events.State
	epoch uint64
	// leading is false until the state is loaded and the new epoch
	// staged, and again as soon as leadership is lost. leadingNow is
	// its copy for readers that do not take mu.
	leading    bool
	leadingNow atomic.Bool

	// leaderInfo is the leader this master knows of (see LeaderInfo).
	leaderInfo atomic.Pointer[MasterInfo]
	// abdicate ends the term this master leads (see Abdicate); nil
	// while it leads none.
	abdicate atomic.Pointer[context.CancelCauseFunc]

	zkStore *ZKStore                  // with Config.ZK: bound to each term's session
	lease   atomic.Pointer[time.Time] // see lease.go
	// candidateInfos are the election's candidates (see Masters).
	candidateInfos atomic.Pointer[[]MasterInfo]
	runtime        *runtime   // in-memory, leader-only bookkeeping
	pipe           *pipeline  // changes on their way to the store (commit.go)
	reads          *readViews // what API reads are served from (readview.go)
	live           *liveness  // agents' heartbeats, apart from mu (liveness.go)
	metrics        *metrics
	guard          *httpGuard // the API's door (http_guard.go)
	sse            *sseHub    // /v2/events streams
	kick           chan struct{}
	httpURL        string
}

// New checks the config and returns a master that does nothing until Run.
func New(cfg Config) (*Master, error) {
	if cfg.NC == nil {
		return nil, errors.New("master: no NATS connection")
	}
	if cfg.ZK != nil && cfg.Store != nil {
		return nil, errors.New("master: a ZooKeeper master keeps its state in ZooKeeper, not in a store")
	}
	if cfg.ZK == nil && cfg.Store == nil {
		return nil, errors.New("master: no store")
	}
	if cfg.ZK != nil && (len(cfg.ZK.Servers) == 0 || cfg.ZK.Path == "") {
		return nil, errors.New("master: ZooKeeper config needs servers and a path")
	}
	if t := cfg.TLS; t != nil && len(t.Certificates) == 0 && t.GetCertificate == nil && t.GetConfigForClient == nil {
		return nil, errors.New("master: TLS config has no certificate")
	}
	if cfg.AgentTimeout <= 0 {
		cfg.AgentTimeout = 15 * time.Second
	}
	if cfg.TaskLaunchTimeout <= 0 {
		cfg.TaskLaunchTimeout = DefaultTaskLaunchTimeout
	}
	if cfg.KillDrainDelay == 0 {
		cfg.KillDrainDelay = DefaultKillDrainDelay
	}
	switch {
	case cfg.MaxInstancesPerApp == 0:
		cfg.MaxInstancesPerApp = DefaultMaxInstancesPerApp
	case cfg.MaxInstancesPerApp < 0:
		return nil, fmt.Errorf("master: max instances per app is %d, must be 1 or more", cfg.MaxInstancesPerApp)
	}
	switch {
	case cfg.MaxAppVersions == 0:
		cfg.MaxAppVersions = DefaultMaxAppVersions
	case cfg.MaxAppVersions < 0:
		return nil, fmt.Errorf("master: max app versions is %d, must be 1 or more", cfg.MaxAppVersions)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Version == "" {
		cfg.Version = "0.1.0-dev"
	}
	if cfg.ID == "" {
		cfg.ID = uuid.NewString()
	}
	var zs *ZKStore
	if cfg.ZK != nil {
		z := *cfg.ZK
		if z.SessionTimeout <= 0 {
			z.SessionTimeout = DefaultZKSessionTimeout
		}
		cfg.ZK = &z
		_, stateACL := z.acls()
		zs = NewZKStore(nil, ZKStoreConfig{Root: z.Path, ACL: stateACL, Owner: cfg.ID, Log: cfg.Log})
		cfg.Store = zs
	}
	m := &Master{
		zkStore: zs,
		cfg:     cfg,
		log:     cfg.Log,
		pub:     &natsbus.Publisher{NC: cfg.NC, Subjects: cfg.Subjects},
		state:   events.NewState(),
		runtime: newRuntime(),
		pipe:    newPipeline(),
		reads:   newReadViews(),
		live:    newLiveness(),
		kick:    make(chan struct{}, 1),
	}
	if zs != nil {
		// The store's calls on the leader's session renew the lease too.
		zs.cfg.Alive = m.extendLease
	}
	m.metrics = newMetrics(m)
	guard, err := newHTTPGuard(cfg, cfg.Log, m.metrics.httpRefused)
	if err != nil {
		return nil, fmt.Errorf("master: %w", err)
	}
	m.guard = guard
	m.sse = newSSEHub(cfg.Now)
	return m, nil
}

// Run serves until ctx ends. Without Config.ZK it leads at once: it loads
// the stored state, starts a new epoch and does all leader work. With it,
// it campaigns and leads only while elected.
func (m *Master) Run(ctx context.Context) error {
	ln := m.cfg.Listener
	if ln == nil && m.cfg.HTTPAddr != "" {
		var err error
		ln, err = net.Listen("tcp", m.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("master: listen %s: %w", m.cfg.HTTPAddr, err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if ln != nil {
		m.httpURL = m.scheme() + "://" + ln.Addr().String()
		srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second,
			// TLS handshake failures and the like, into the master's log.
			ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelInfo)}
		if m.cfg.TLS != nil {
			srv.TLSConfig = m.cfg.TLS.Clone()
			if srv.TLSConfig.MinVersion == 0 {
				srv.TLSConfig.MinVersion = tls.VersionTLS12
			}
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.log.Error("http server stopped", "err", err)
				cancel()
			}
		}()
	}
	if m.cfg.ZK != nil {
		return m.campaign(ctx)
	}
	return m.lead(ctx)
}

// URL is the API's base URL once Run listens.
func (m *Master) URL() string { return m.httpURL }

// scheme is the API's URL scheme, the same on every master of a cluster.
func (m *Master) scheme() string {
	if m.cfg.TLS != nil {
		return "https"
	}
	return "http"
}

// lead is all leader-only work: it returns when ctx ends, and everything it
// started has stopped by then.
func (m *Master) lead(ctx context.Context) error {
	started, err := m.establish()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var loops, sends sync.WaitGroup
	loops.Add(1)
	go func() {
		defer loops.Done()
		m.commitLoop(ctx, func(send func(context.Context)) {
			sends.Add(1)
			go func() { defer sends.Done(); send(ctx) }()
		})
	}()
	defer func() {
		// Stop acting before waiting for the loops to wind down: from
		// here on nothing commits, schedules or publishes.
		m.revoke()
		cancel()
		loops.Wait()
		sends.Wait()
	}()
	if err := started.wait(); err != nil {
		return fmt.Errorf("master: start epoch %d: %w", m.epoch, err)
	}

	subs, err := m.subscribe()
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	loops.Add(2)
	go func() { defer loops.Done(); m.syncTicks(ctx) }()
	go func() { defer loops.Done(); m.reconcileLoop(ctx) }()
	<-ctx.Done()
	return nil
}

// establish loads the state and stages a new epoch with this master as
// leader; the returned durability says when that is stored. Agents that
// the state says are active get a fresh heartbeat deadline: their silence
// while no master ran is not their fault.
func (m *Master) establish() (durability, error) {
	loaded, err := m.cfg.Store.Load()
	if err != nil {
		return durability{}, fmt.Errorf("master: load state: %w", err)
	}
	// Nothing is staged yet: what was loaded is what followers have. The
	// working state is a copy, indexed by agent too (the master asks for
	// an agent's tasks; followers do not); the loaded state keeps the app
	// index its store built.
	st := loaded.CloneUnindexed()
	st.IndexByAgent()
	loaded.DropVersions() // the working state and the read view keep them; followers do not
	m.pipe.published.reset(loaded)
	m.reads.reset(st) // st is this function's alone until m.state is set
	m.live.reset()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = st
	m.epoch = st.Epoch + 1
	m.runtime = newRuntime()
	m.runtime.dirty.all = true
	now := m.cfg.Now()
	for id, a := range st.Agents {
		if a.State != events.AgentGone {
			m.live.set(id, events.NodeToken(a.Hostname), a.State == events.AgentActive, now)
		}
	}
	ip, port := m.advertised()
	m.setLeading(true)
	if err := m.commitLocked(events.PutLeader(events.Leader{
		ID: m.cfg.ID, Hostname: m.cfg.Hostname, IP: ip, Port: port, Epoch: m.epoch,
	})); err != nil {
		m.setLeading(false)
		return durability{}, fmt.Errorf("master: start epoch %d: %w", m.epoch, err)
	}
	self := m.selfInfo()
	m.leaderInfo.Store(&self)
	m.log.Info("leading", "epoch", m.epoch, "seq", m.state.Seq,
		"apps", len(st.Apps), "tasks", len(st.Tasks), "agents", len(st.Agents))
	return m.durableLocked(), nil
}

// setLeading sets leading, and its copy that the heartbeat path reads
// without the lock. m.mu must be held for writing.
func (m *Master) setLeading(on bool) {
	m.leading = on
	m.leadingNow.Store(on)
}

func (m *Master) revoke() {
	m.mu.Lock()
	m.setLeading(false)
	m.mu.Unlock()
	m.leaderInfo.Store(nil) // until the election names the next one
}

// LeaderInfo is the master that leads now, as far as this one knows: itself
// while it leads, otherwise the one the election names (ok false when
// there is none, or none known yet).
func (m *Master) LeaderInfo() (MasterInfo, bool) {
	if p := m.leaderInfo.Load(); p != nil {
		return *p, true
	}
	return MasterInfo{}, false
}

// advertised is the API address recorded in the Leader record.
func (m *Master) advertised() (string, int) {
	addr := m.cfg.HTTPAddr
	if m.cfg.Listener != nil {
		addr = m.cfg.Listener.Addr().String()
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	port, _ := strconv.Atoi(p)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return host, port
}

// View runs fn with the current state under a read lock. fn must not keep
// or change s.
func (m *Master) View(fn func(s *events.State)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fn(m.state)
}

// Leading reports whether this master currently acts as leader. It takes
// no lock: every API call asks (standby.go), and a read must not queue
// behind a write for it.
func (m *Master) Leading() bool {
	return m.leadingNow.Load() && m.leaseHeld()
}

// syncTicks publishes the leader's (epoch, seq) every second so followers
// notice a lost last event.
func (m *Master) syncTicks(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.publishSyncTick()
		}
	}
}

// kickReconcile asks the reconcile loop for a pass soon.
func (m *Master) kickReconcile() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}
