// Package agent runs tasks on one node for the atoll master. It only ever
// dials out: it registers, heartbeats and reports task status over NATS, and
// answers launch and kill requests on its own subjects (DESIGN.md §2, §4).
//
// Tasks are plain processes, each in its own session, run as their app's
// user (or the agent's default user) in a sandbox of that user's, and
// checkpointed in a folder of the agent's alone, so that a restarted agent
// process re-adopts them: an agent restart kills nothing.
package agent

import (
	"context"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/cgroup"
)

// Config configures an Agent.
type Config struct {
	NC       *nats.Conn
	Subjects events.Subjects
	// Hostname defaults to os.Hostname.
	Hostname string
	// AdvertiseIP is what DNS and HAProxy point at; it defaults to the
	// local address the agent reaches the NATS server from.
	AdvertiseIP string
	// Resources: zero fields are detected (NumCPU, /proc/meminfo in MB,
	// statfs of WorkDir in MB); ports default to [31000-32000].
	Resources  events.Resources
	Attributes map[string]string
	// WorkDir holds the agent id file, task checkpoints and sandboxes
	// (workdir.go). Tasks must be able to pass through the folders above
	// it: a task that cannot reach its sandbox fails.
	WorkDir string
	// DefaultUser is who a task runs as when its app names no user:
	// empty is "nobody" for an agent running as root, else the agent's
	// own user. An agent not running as root runs tasks only as itself.
	DefaultUser string
	// AllowRootTasks lets an agent running as root run tasks as root
	// (uid 0); without it such a task fails.
	AllowRootTasks bool
	// HeartbeatInterval defaults to 1s.
	HeartbeatInterval time.Duration
	// StatisticsInterval is how often a heartbeat carries the tasks'
	// usage; default 10s.
	StatisticsInterval time.Duration
	// BinDir goes first on every task's PATH (the atoll binary's folder);
	// empty adds nothing.
	BinDir string
	// KillTasksOnStop makes Run kill every task and wait for them before it
	// returns (atoll dev). Otherwise tasks keep running and a later Agent on
	// the same WorkDir re-adopts them.
	KillTasksOnStop bool
	// Isolation is how tasks are held to their resources: cgroups (the
	// default; the agent must be root) or none.
	Isolation Isolation
	// CgroupParent is the agent's cgroup, its tasks' cgroups inside:
	// relative, under the agent's own cgroup; absolute, from the
	// hierarchy's root. Default DefaultCgroupParent(Hostname, WorkDir).
	CgroupParent string
	// TaskPidsLimit is how many processes (and threads) a task may have:
	// 0 is DefaultTaskPidsLimit, negative is no limit.
	TaskPidsLimit int64
	// Containers configures tasks run from images (containers.go).
	Containers ContainerConfig
	// SandboxGCDelay is how long the sandbox of a finished task (and a
	// container's root filesystem) stays after the task's last write,
	// as Mesos's --gc_delay; unused images go after the same delay. 0 is
	// DefaultSandboxGCDelay; negative keeps them.
	SandboxGCDelay time.Duration
	// LogMaxSize is how large a task's stdout or stderr grows before it
	// is rotated to stdout.1 (stderr.1), the one older file kept: 0 is
	// DefaultLogMaxSize, negative no rotation (logs.go).
	LogMaxSize int64
	Log        *slog.Logger
}

// Agent is one node's agent. Create it with New and start it with Run.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	users userPolicy

	// Tunables; tests shorten them.
	statusTimeout   time.Duration // one status request
	registerTimeout time.Duration // one register request
	adoptedPoll     time.Duration // how often adopted pids are checked
	stopWait        time.Duration // extra wait for killed tasks at stop

	started atomic.Bool
	status  *statusQueue
	// cgroups is the parent of the tasks' cgroups; nil without isolation.
	cgroups *cgroup.Parent
	ctrs    *containers
	// How often logs are checked for rotation and sandboxes for
	// collection; tests shorten them.
	logCheckInterval time.Duration
	gcInterval       time.Duration

	mu    sync.Mutex
	id    string
	tasks map[string]*task
	// launches counts the tasks this process took, under run (new at
	// every start): reports and launch acks carry it (LaunchMark), so
	// the master can tell a report made before a launch from one made
	// after it, however late it handles either.
	launches events.LaunchMark
	closing  bool           // no more launches
	inflight sync.WaitGroup // launch and kill handlers in progress
	regReady chan struct{}  // closed while registered with the master
	wctx     context.Context
	fetchCtx context.Context // Run's: downloads stop with the agent

	subMu sync.Mutex
	subs  []*nats.Subscription

	wg sync.WaitGroup // goroutines that stop at the end of Run
}

const (
	defaultKillGrace     = 3 * time.Second
	defaultHeartbeatInt  = time.Second
	defaultStatisticsInt = 10 * time.Second
)

// New checks cfg, fills its defaults, reads the agent id persisted in
// WorkDir, if any, and makes the agent's parent cgroup (with cgroups
// isolation). It starts nothing.
func New(cfg Config) (*Agent, error) {
	if cfg.NC == nil {
		return nil, errors.New("agent: no NATS connection")
	}
	if cfg.WorkDir == "" {
		return nil, errors.New("agent: no work dir")
	}
	wd, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("agent: work dir: %w", err)
	}
	cfg.WorkDir = wd
	if err := prepareWorkDir(wd); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = defaultHeartbeatInt
	}
	if cfg.StatisticsInterval <= 0 {
		cfg.StatisticsInterval = defaultStatisticsInt
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("agent: hostname: %w", err)
		}
		cfg.Hostname = h
	}
	if cfg.AdvertiseIP == "" {
		cfg.AdvertiseIP = localIPTowards(cfg.NC)
	}
	if err := fillResources(&cfg.Resources, wd); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.Isolation, err = ParseIsolation(string(cfg.Isolation)); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.TaskPidsLimit == 0 {
		cfg.TaskPidsLimit = DefaultTaskPidsLimit
	}
	id, err := readAgentID(wd)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	users := userPolicy{host: cfg.Hostname, self: selfIdentity(), allowRoot: cfg.AllowRootTasks}
	if cfg.DefaultUser == "" {
		cfg.DefaultUser = users.self.Name
		if users.self.UID == 0 {
			cfg.DefaultUser = "nobody"
		}
	}
	defUser, err := lookupUser(cfg.DefaultUser, cfg.Hostname)
	if err == nil {
		err = users.check(defUser)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: default user: %w", err)
	}
	if cfg.SandboxGCDelay == 0 {
		cfg.SandboxGCDelay = DefaultSandboxGCDelay
	}
	if cfg.LogMaxSize == 0 {
		cfg.LogMaxSize = DefaultLogMaxSize
	}
	ctrs, err := openContainers(cfg, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("agent: containers: %w", err)
	}
	// Last: a New that fails leaves no cgroup behind.
	cgroups, err := openIsolation(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{
		cfg:              cfg,
		log:              cfg.Log,
		users:            users,
		statusTimeout:    2 * time.Second,
		registerTimeout:  2 * time.Second,
		adoptedPoll:      250 * time.Millisecond,
		stopWait:         10 * time.Second,
		status:           newStatusQueue(),
		cgroups:          cgroups,
		ctrs:             ctrs,
		logCheckInterval: 2 * time.Second,
		gcInterval:       time.Minute,
		id:               id,
		tasks:            map[string]*task{},
		launches:         events.LaunchMark{Run: uuid.NewString()},
		regReady:         make(chan struct{}),
	}
	a.status.log = cfg.Log
	a.checkReach(defUser)
	return a, nil
}

// checkReach warns when tasks of the default user could not reach their
// sandboxes or the atoll binary: they would fail, each with that message.
func (a *Agent) checkReach(def identity) {
	var who *identity
	if a.users.switches(&def) {
		who = &def
	}
	dirs := []string{filepath.Join(a.cfg.WorkDir, tasksDir)}
	if a.cfg.BinDir != "" {
		dirs = append(dirs, a.cfg.BinDir)
	}
	for _, d := range dirs {
		if err := canEnter(d, who); err != nil {
			a.log.Warn("tasks of the default user will fail: make the folders traversable (chmod o+x)",
				"user", def.Name, "err", err)
		}
	}
}

// DefaultUser is who tasks of apps without a user run as.
func (a *Agent) DefaultUser() string { return a.cfg.DefaultUser }

// ID is the agent id: the one the master gave, or the one persisted from an
// earlier run, or "" before the first registration.
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

// Run registers, heartbeats and serves launch and kill requests until ctx
// ends. It can be called once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	unlock, err := lockWorkDir(a.cfg.WorkDir)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer unlock()
	if err := moveOldAgentID(a.cfg.WorkDir); err != nil {
		a.log.Error("cannot move the agent id file out of the old place", "err", err)
	}

	// Task watchers and the status sender outlive ctx a little: they see
	// the tasks killed at stop and report them.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	sctx, scancel := context.WithCancel(context.WithoutCancel(ctx))
	defer scancel()
	a.mu.Lock()
	a.wctx = wctx
	a.fetchCtx = ctx
	a.mu.Unlock()

	a.recoverTasks()

	a.goRun(func() { a.watchTasks(wctx) })
	a.goRun(func() { a.rotateLogs(ctx) })
	a.goRun(func() { a.collectGarbage(ctx) })
	a.goRun(func() { a.status.run(sctx, a) })
	if a.ID() != "" {
		// Serve our subjects at once: the master may talk to us before
		// our registration reply arrives.
		a.serveNodeSubjects()
	}
	a.goRun(func() { a.session(ctx) })

	<-ctx.Done()
	a.stop(wcancel, scancel)
	return nil
}

// stop ends Run: no more launches, tasks killed if configured, every
// goroutine gone.
func (a *Agent) stop(wcancel, scancel context.CancelFunc) {
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	a.unsubscribe()
	a.inflight.Wait()

	if a.cfg.KillTasksOnStop {
		a.killAllAndWait()
		// Best effort: tell the master how they ended.
		select {
		case <-a.status.drained():
		case <-time.After(2 * time.Second):
		}
	}
	wcancel()
	scancel()
	a.wg.Wait()
	if a.cgroups != nil {
		// No empty cgroup is left behind by an agent whose tasks are all
		// gone; a later agent makes it again.
		if err := a.cgroups.RemoveIfEmpty(); err != nil {
			a.log.Warn("cannot remove the agent's cgroup", "err", err)
		}
	}
}

func (a *Agent) goRun(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// taskDir is the sandbox of a task.
func (a *Agent) taskDir(id string) string {
	return filepath.Join(a.cfg.WorkDir, tasksDir, id)
}
