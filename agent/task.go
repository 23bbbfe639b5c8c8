package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/cgroup"
	"github.com/atollhq/atoll/internal/startgate"
)

// task is one task of this agent. Every field is guarded by Agent.mu.
type task struct {
	id        string
	mark      events.LaunchMark // where this process took it
	launch    events.LaunchRequest
	runAs     *identity // nil for a task adopted from before users
	pid       int       // 0 while starting
	startTime uint64    // of pid, from /proc
	startedAt time.Time // wall clock at start: health check grace counts from it
	adopted   bool      // started by an earlier agent process: not our child
	state     events.TaskState
	message   string // why the task ended, once it has
	killing   bool   // a kill was requested
	grace     time.Duration
	exited    bool // the process is gone (and reaped, if ours)
	// ending: a container task's end is being cleaned up before it is
	// reported (endContainer).
	ending bool
	// cancelStart gives up a start under way (an image pull): a kill of
	// a task that is not running yet. Nil once started.
	cancelStart context.CancelFunc
	done        chan struct{} // closed when exited
	// cgroup holds the task's processes; nil without isolation (or for a
	// task adopted from before it).
	cgroup *cgroup.Group

	// Health checks, while the task runs and has any (health.go).
	stopHealth context.CancelFunc // nil when none were started
	ready      bool               // passed its readiness check (readiness.go)
	healthDone chan struct{}      // closed once the checks have stopped
}

func (t *task) report() events.TaskReport {
	return events.TaskReport{TaskID: t.id, AppID: t.launch.Task.AppID, State: t.state, Message: t.message}
}

// reports lists the agent's tasks, sorted by id. Ended tasks stay in the
// list until their final status is acked, so the master learns how they
// ended even if it missed the update, rather than declaring them lost.
func (a *Agent) reports() []events.TaskReport {
	out, _ := a.reportsWith(false)
	return out
}

// reportsWith is reports, with the usage of the running tasks if
// withStatistics, and how far launches had been taken when the list was
// made.
func (a *Agent) reportsWith(withStatistics bool) ([]events.TaskReport, *events.LaunchMark) {
	a.mu.Lock()
	mark := a.launches
	out := []events.TaskReport{}
	var groups []*cgroup.Group
	for _, t := range a.tasks {
		out = append(out, t.report())
		var g *cgroup.Group
		if withStatistics && !t.exited && t.pid > 0 {
			g = t.cgroup
		}
		groups = append(groups, g)
	}
	a.mu.Unlock()
	// The cgroup files are read outside the lock: tasks start and end
	// meanwhile, and a cgroup that is gone reads as no statistics.
	now := time.Now()
	for i, g := range groups {
		out[i].Statistics = statistics(g, now)
	}
	slices.SortFunc(out, func(x, y events.TaskReport) int { return strings.Compare(x.TaskID, y.TaskID) })
	return out, &mark
}

// checkTaskID rejects ids that cannot name a sandbox folder.
func checkTaskID(id string) error {
	switch {
	case id == "":
		return errors.New("launch request without task id")
	case id == "." || id == ".." || strings.ContainsAny(id, "/\x00") || len(id) > 255:
		return fmt.Errorf("invalid task id %q", id)
	}
	return nil
}

// launch starts a task and returns once it runs (or failed to start).
func (a *Agent) launch(req events.LaunchRequest) error {
	id := req.Task.ID
	if err := checkTaskID(id); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(a.fetchContext())
	t := &task{id: id, launch: req, state: events.TaskStaging, done: make(chan struct{}), cancelStart: cancel}
	a.mu.Lock()
	if _, ok := a.tasks[id]; ok {
		a.mu.Unlock()
		cancel()
		return &events.CodedError{Code: events.AckTaskExists, Err: fmt.Errorf("task %s already exists", id)}
	}
	a.tasks[id] = t
	a.launches.N++
	t.mark = a.launches
	a.mu.Unlock()

	if len(req.Fetch) > 0 || req.Container != nil {
		// Downloads and image pulls take as long as they take: the
		// launch is taken now and the task, staging meanwhile as under
		// Mesos's fetcher, runs or fails when they are done. The
		// caller's inflight token keeps the count above zero while this
		// one is added.
		a.inflight.Add(1)
		go func() {
			defer a.inflight.Done()
			defer cancel()
			_ = a.run(ctx, t, req)
		}()
		return nil
	}
	defer cancel()
	return a.run(ctx, t, req)
}

// run starts a launched task and reports it running, or failed.
func (a *Agent) run(ctx context.Context, t *task, req events.LaunchRequest) error {
	id := t.id
	st, err := a.start(ctx, req)
	if err != nil {
		a.mu.Lock()
		delete(a.tasks, id)
		t.exited, t.cancelStart = true, nil
		killed := t.killing
		close(t.done)
		a.mu.Unlock()
		if killed {
			a.log.Info("task killed before it started", "task", id, "err", err)
			a.sendUpdate(id, events.TaskKilled, "killed before it started", nil)
			return nil
		}
		a.log.Warn("task failed to start", "task", id, "err", err)
		a.sendUpdate(id, events.TaskFailed, "failed to start: "+err.Error(), nil)
		return fmt.Errorf("start task %s: %w", id, err)
	}

	a.mu.Lock()
	t.pid, t.startTime, t.startedAt, t.runAs, t.state = st.pid, st.startTime, st.at, &st.runAs, events.TaskRunning
	t.cgroup, t.cancelStart = st.cgroup, nil
	a.status.push(statusItem{upd: events.StatusUpdate{TaskID: id, State: events.TaskRunning, IPAddresses: st.ips, Time: time.Now().UTC()}})
	killing := t.killing
	if !killing {
		a.startHealthLocked(t)
		a.startReadinessLocked(t)
	}
	a.mu.Unlock()
	a.log.Info("task started", "task", id, "app", req.Task.AppID, "pid", st.pid, "user", st.runAs.Name)
	if killing { // a kill came while we were starting
		a.signal(t, syscall.SIGTERM)
	}
	return nil
}

// started is a task's process, just started.
type started struct {
	pid       int
	startTime uint64    // of pid, from /proc
	at        time.Time // wall clock
	runAs     identity
	cgroup    *cgroup.Group      // nil without isolation
	ips       []events.IPAddress // a bridged container's
}

// start runs the task's process in its sandbox, as the task's user, and
// checkpoints it.
func (a *Agent) start(ctx context.Context, req events.LaunchRequest) (started, error) {
	if req.Container != nil {
		return a.startContainer(ctx, req)
	}
	runAs, err := a.resolveUser(req.User)
	if err != nil {
		return started{}, err
	}
	var owner *identity // nil: the task runs as the agent
	if a.users.switches(&runAs) {
		owner = &runAs
	}
	dir := a.taskDir(req.Task.ID)
	if err := makeSandbox(dir, owner); err != nil {
		return started{}, err
	}
	if err := a.fetchAll(req.Fetch, dir, owner); err != nil {
		return started{}, err
	}
	env, path := a.taskEnv(req, dir)
	prog, argv, err := command(req, path, dir)
	if err != nil {
		return started{}, err
	}
	files, err := openStdio(dir, owner)
	if err != nil {
		return started{}, err
	}
	var group *cgroup.Group
	if a.cgroups != nil {
		if group, err = a.cgroups.NewGroup(req.Task.ID, a.taskLimits(req)); err != nil {
			closeFiles(files)
			return started{}, err
		}
	}
	at := time.Now().UTC()
	pid, err := a.startProcess(prog, argv, &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: files,
		// Own session and process group, no parent-death signal: the
		// task outlives the agent process.
		Sys: &syscall.SysProcAttr{Setsid: true, Credential: a.users.credential(owner)},
	}, group)
	closeFiles(files)
	if errors.Is(err, syscall.EACCES) {
		err = fmt.Errorf("user %s may not run %s: %w", runAs.Name, prog, err)
	}
	if err != nil {
		a.destroyCgroup(req.Task.ID, group)
		return started{}, err
	}

	// Until we reap it, the child's /proc entry stays, even as a zombie.
	info, err := readProc(pid)
	if err == nil {
		cp := checkpoint{Launch: req, RunAs: &runAs, Pid: pid, StartTime: info.StartTime, BootID: bootID(), StartedAt: at}
		if group != nil {
			paths := group.Paths()
			cp.Cgroup = &paths
		}
		err = writeCheckpoint(a.checkpointDir(req.Task.ID), cp)
	}
	if err != nil {
		killAndReap(pid)
		a.destroyCgroup(req.Task.ID, group)
		return started{}, err
	}
	return started{pid: pid, startTime: info.StartTime, at: at, runAs: runAs, cgroup: group}, nil
}

// startProcess starts prog and returns its pid. With a cgroup, the
// process starts behind a gate (internal/startgate), joins the cgroup, and
// only then execs prog: none of the task runs outside its limits.
func (a *Agent) startProcess(prog string, argv []string, attr *os.ProcAttr, group *cgroup.Group) (int, error) {
	if group == nil {
		p, err := os.StartProcess(prog, argv, attr)
		if err != nil {
			return 0, err
		}
		pid := p.Pid
		_ = p.Release() // we wait for it ourselves (watch.go)
		return pid, nil
	}
	gate, err := startgate.Start(prog, argv, attr)
	if err != nil {
		return 0, err
	}
	if err := group.Add(gate.Pid); err != nil {
		gate.Abort()
		killAndReap(gate.Pid)
		return 0, fmt.Errorf("isolation: %w", err)
	}
	if err := gate.Release(); err != nil {
		killAndReap(gate.Pid)
		return 0, err
	}
	return gate.Pid, nil
}

// killAndReap ends a child that was never a running task.
func killAndReap(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			return
		}
	}
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// makeSandbox makes a task's sandbox, mode 0700, owned by the task's user
// (owner; nil leaves it the agent's), and checks that user can enter it.
func makeSandbox(dir string, owner *identity) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sandbox: %w", err)
	}
	if owner != nil {
		if err := os.Lchown(dir, int(owner.UID), int(owner.GID)); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := canEnter(dir, owner); err != nil {
		return fmt.Errorf("sandbox %w", err)
	}
	return nil
}

// openStdio opens /dev/null, sandbox/stdout and sandbox/stderr; the two
// files belong to owner (nil: to the agent).
func openStdio(dir string, owner *identity) ([]*os.File, error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	files = append(files, null)
	for _, name := range []string{"stdout", "stderr"} {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
		if err == nil && owner != nil {
			if err = f.Chown(int(owner.UID), int(owner.GID)); err != nil {
				_ = f.Close()
			}
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// taskEnv is the request's env plus PATH (BinDir first, then the request's
// PATH or else the agent's) and MESOS_SANDBOX. It also returns that PATH.
func (a *Agent) taskEnv(req events.LaunchRequest, sandbox string) (env []string, path string) {
	path = req.Env["PATH"]
	if path == "" {
		path = os.Getenv("PATH")
	}
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	if a.cfg.BinDir != "" {
		path = a.cfg.BinDir + string(os.PathListSeparator) + path
	}
	for k, v := range req.Env {
		if k == "PATH" || k == "MESOS_SANDBOX" || k == "" || strings.ContainsAny(k, "=\x00") {
			continue
		}
		env = append(env, k+"="+v)
	}
	env = append(env, "PATH="+path, "MESOS_SANDBOX="+sandbox)
	slices.Sort(env)
	return env, path
}

// command is what to exec: /bin/sh -c Cmd, or Args looked up in the task's
// PATH (relative paths from the sandbox).
func command(req events.LaunchRequest, path, sandbox string) (string, []string, error) {
	if req.Cmd != "" {
		return "/bin/sh", []string{"/bin/sh", "-c", req.Cmd}, nil
	}
	if len(req.Args) == 0 || req.Args[0] == "" {
		return "", nil, errors.New("launch request has neither cmd nor args")
	}
	name := req.Args[0]
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join(sandbox, name)
		}
		return name, req.Args, nil
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(sandbox, d)
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, req.Args, nil
		}
	}
	return "", nil, fmt.Errorf("executable %q not found in PATH %s", name, path)
}
