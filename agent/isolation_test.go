package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/cgroup"
)

// limitedTask is a shell task with its app's cpus and mem, as the master
// sends them.
func limitedTask(id, cmd string, cpus, mem float64) events.LaunchRequest {
	req := shellTask(id, cmd)
	req.Limits = &events.TaskLimits{Cpus: cpus, Mem: mem}
	return req
}

// taskCgroup is the cgroup the agent checkpointed for a task.
func taskCgroup(t *testing.T, cfg Config, taskID string) cgroup.Paths {
	t.Helper()
	cp := checkpointOf(t, cfg, taskID)
	if cp.Cgroup == nil || cp.Cgroup.IsZero() {
		t.Fatalf("checkpoint of %s names no cgroup", taskID)
	}
	return *cp.Cgroup
}

// controlFile is a control file of a cgroup: in controller's v1
// hierarchy (the test machines are cgroup v1), or in its v2 folder (the
// tests run on v2 in a VM too, TestIsolationOnCgroupV2InAVM).
func controlFile(p cgroup.Paths, controller, name string) string {
	if p.V2 != "" {
		return filepath.Join("/sys/fs/cgroup", p.V2, name)
	}
	return filepath.Join("/sys/fs/cgroup", controller, p.V1[controller], name)
}

func readControl(t *testing.T, p cgroup.Paths, controller, name string) string {
	t.Helper()
	data, err := os.ReadFile(controlFile(p, controller, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// readLimit reads the control file named v1 (in controller's hierarchy)
// or v2, as p is.
func readLimit(t *testing.T, p cgroup.Paths, controller, v1, v2 string) string {
	t.Helper()
	if p.V2 != "" {
		return readControl(t, p, controller, v2)
	}
	return readControl(t, p, controller, v1)
}

func cgroupGone(p cgroup.Paths) bool {
	for c := range p.V1 {
		if _, err := os.Stat(filepath.Dir(controlFile(p, c, "x"))); err == nil {
			return false
		}
	}
	if p.V2 != "" {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", p.V2)); err == nil {
			return false
		}
	}
	return true
}

func TestTaskRunsInItsCgroupFromItsFirstInstruction(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	// The shell's first command reads the shell's own cgroups: it was in
	// the task's cgroup before it ran anything.
	if ack := env.launch(id, limitedTask("where.1", "cat /proc/$$/cgroup; exec sleep 300", 0.5, 64)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "where.1", events.TaskRunning)
	p := taskCgroup(t, cfg, "where.1")
	waitFor(t, 5*time.Second, "the task's output", func() bool { return sandboxFile(cfg, "where.1", "stdout") != "" })
	out := sandboxFile(cfg, "where.1", "stdout")
	for _, c := range []string{"memory", "cpu", "cpuacct", "pids"} {
		want := ":" + c + ":" + p.V1[c] + "\n"
		if p.V2 != "" {
			want = "0::" + p.V2 + "\n"
		}
		if !strings.Contains(out, want) {
			t.Errorf("the task's /proc/self/cgroup lacks %q:\n%s", strings.TrimSpace(want), out)
		}
	}
	// Mesos's mapping: shares 1024 per cpu, quota cpus × 100 ms, mem MB.
	limits := []struct{ controller, file, want string }{
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"memory", "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
		{"pids", "pids.max", strconv.Itoa(DefaultTaskPidsLimit)},
	}
	if p.V2 != "" {
		limits = []struct{ controller, file, want string }{
			// runc's and the cgroups library's mapping of shares
			// (1024 per cpu: v2's default weight 100 for one cpu).
			{"cpu", "cpu.weight", strconv.FormatUint(cgroup2.ConvertCPUSharesToCgroupV2Value(512), 10)},
			{"cpu", "cpu.max", "50000 100000"},
			{"memory", "memory.max", strconv.Itoa(64 << 20)},
			{"pids", "pids.max", strconv.Itoa(DefaultTaskPidsLimit)},
		}
	}
	for _, f := range limits {
		if got := readControl(t, p, f.controller, f.file); got != f.want {
			t.Errorf("%s = %s, want %s", f.file, got, f.want)
		}
	}

	// Killing it removes its cgroup.
	if ack := env.kill(id, events.KillRequest{TaskID: "where.1"}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	env.master.waitStatus(t, "where.1", events.TaskKilled)
	waitFor(t, 10*time.Second, "the task's cgroup removed", func() bool { return cgroupGone(p) })
}

func TestOOMKillFailsTaskWithMesosMemoryReason(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	// dd reads into a 100 MB buffer; the app asked for 32. (At once: a
	// shell growing a variable takes half a minute to reach 32 MB under
	// the emulated CPU of the cgroup v2 VM.)
	hog := `dd if=/dev/zero of=/dev/null bs=100000000 count=1 && echo survived`
	if ack := env.launch(id, limitedTask("hog.1", hog, 1, 32)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	p := taskCgroup(t, cfg, "hog.1")
	upd := env.master.waitStatus(t, "hog.1", events.TaskFailed)
	if !strings.HasPrefix(upd.Message, "Memory limit exceeded: Requested: 32MB Maximum Used: ") {
		t.Errorf("message = %q, want Mesos's memory limitation", upd.Message)
	}
	t.Logf("OOM: %s (%s)", upd.Message, upd.Reason)
	if upd.Reason != "REASON_CONTAINER_LIMITATION_MEMORY" {
		t.Errorf("reason = %q, want Mesos's REASON_CONTAINER_LIMITATION_MEMORY", upd.Reason)
	}
	if out := sandboxFile(cfg, "hog.1", "stdout"); strings.Contains(out, "survived") {
		t.Errorf("the hog was not stopped: %q", out)
	}
	waitFor(t, 10*time.Second, "the task's cgroup removed", func() bool { return cgroupGone(p) })
}

func TestOOMKillOfAChildEndsTheTask(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	// A subshell hogs and is killed; the task's main process would sleep
	// on. Mesos ends the whole container at an OOM, and so does the agent.
	hog := `(dd if=/dev/zero of=/dev/null bs=100000000 count=1); echo sleeping on; exec sleep 300`
	if ack := env.launch(id, limitedTask("child.1", hog, 1, 32)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	upd := env.master.waitStatus(t, "child.1", events.TaskFailed)
	if !strings.HasPrefix(upd.Message, "Memory limit exceeded: Requested: 32MB Maximum Used: ") {
		t.Errorf("message = %q, want Mesos's memory limitation", upd.Message)
	}
}

func TestKill9IsNotAnOOM(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	if ack := env.launch(id, limitedTask("nine.1", "exec sleep 300", 0.1, 32)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "nine.1", events.TaskRunning)
	if err := syscall.Kill(checkpointOf(t, cfg, "nine.1").Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	upd := env.master.waitStatus(t, "nine.1", events.TaskFailed)
	if !strings.Contains(upd.Message, "signal 9") || strings.Contains(upd.Message, "Memory") || upd.Reason != "" {
		t.Errorf("message = %q, reason %q, want a plain SIGKILL", upd.Message, upd.Reason)
	}
}

func TestCPUQuotaHoldsABusyLoop(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	if ack := env.launch(id, limitedTask("spin.1", "while :; do :; done", 0.1, 32)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "spin.1", events.TaskRunning)
	p := taskCgroup(t, cfg, "spin.1")
	usage := func() (time.Time, float64) {
		if p.V2 != "" {
			us, err := strconv.ParseUint(statKey(readControl(t, p, "cpu", "cpu.stat"), "usage_usec"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return time.Now(), float64(us) / 1e6
		}
		ns, err := strconv.ParseUint(readControl(t, p, "cpuacct", "cpuacct.usage"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return time.Now(), float64(ns) / 1e9
	}
	t0, u0 := usage()
	// Long enough for many 100 ms periods; the machine is loaded, so
	// only an upper bound is asserted (a loaded machine may give less).
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	t1, u1 := usage()
	wall := t1.Sub(t0).Seconds()
	used := u1 - u0
	const tolerance = 0.3
	// One period's quota on top: the window's edges cut periods.
	limit := 0.1*wall*(1+tolerance) + 0.01
	t.Logf("busy loop with cpus 0.1: %.3f s of CPU in %.3f s (%.1f%% of a core); limit %.3f s", used, wall, 100*used/wall, limit)
	if used > limit {
		t.Errorf("used %.3f s of CPU in %.3f s, more than cpus 0.1 allows (%.3f s)", used, wall, limit)
	}
	throttled := statKey(readControl(t, p, "cpu", "cpu.stat"), "nr_throttled")
	if throttled == "" || throttled == "0" {
		t.Errorf("cpu.stat nr_throttled = %q, want the quota to have throttled the loop", throttled)
	}
	// Heartbeats carry the usage, next to the limit.
	waitFor(t, 5*time.Second, "a heartbeat with the task's statistics", func() bool {
		env.master.mu.Lock()
		defer env.master.mu.Unlock()
		n := len(env.master.heartbeats)
		if n == 0 || len(env.master.heartbeats[n-1].Tasks) != 1 {
			return false
		}
		s := env.master.heartbeats[n-1].Tasks[0].Statistics
		return s != nil && s.CpusLimit == 0.1 && s.MemLimitBytes == 32<<20 && s.MemTotalBytes > 0 &&
			s.CpusUserTimeSecs+s.CpusSystemTimeSecs > 0 && s.CpusNrThrottled > 0
	})
}

func TestPidsLimitHolds(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.TaskPidsLimit = 20
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	// Forty background sleeps: the fork past the limit fails.
	cmd := `i=0; while [ $i -lt 40 ]; do sleep 300 & i=$((i+1)); done; echo forked all; wait`
	if ack := env.launch(id, limitedTask("forks.1", cmd, 0.5, 64)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	p := taskCgroup(t, cfg, "forks.1")
	if got := readControl(t, p, "pids", "pids.max"); got != "20" {
		t.Errorf("pids.max = %s, want 20", got)
	}
	upd := env.master.waitStatus(t, "forks.1", events.TaskFailed)
	if out := sandboxFile(cfg, "forks.1", "stdout"); strings.Contains(out, "forked all") {
		t.Errorf("all 40 forks succeeded under a pids limit of 20 (%s)", upd.Message)
	}
	if errOut := sandboxFile(cfg, "forks.1", "stderr"); !strings.Contains(strings.ToLower(errOut), "fork") {
		t.Errorf("stderr = %q, want a failed fork", errOut)
	}
	// The sleeps it left (their own processes, outside the shell's
	// process group or not) go with the task's cgroup.
	waitFor(t, 10*time.Second, "the task's cgroup removed", func() bool { return cgroupGone(p) })
}

func TestReadoptedTaskKeepsItsCgroup(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.KillTasksOnStop = false
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	if ack := env.launch(id, limitedTask("stay.1", "exec sleep 300", 0.25, 48)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "stay.1", events.TaskRunning)
	cp := checkpointOf(t, cfg, "stay.1")
	killSession(t, cp.Pid)
	p := taskCgroup(t, cfg, "stay.1")
	a.stop(t)

	// A leftover cgroup of no known task is swept at the next start.
	stray := cgroup.Paths{V1: map[string]string{}}
	for c, dir := range p.V1 {
		stray.V1[c] = filepath.Join(filepath.Dir(dir), "stray.1")
		if err := os.Mkdir(filepath.Join("/sys/fs/cgroup", c, stray.V1[c]), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if p.V2 != "" {
		stray = cgroup.Paths{V2: filepath.Join(filepath.Dir(p.V2), "stray.1")}
		if err := os.Mkdir(filepath.Join("/sys/fs/cgroup", stray.V2), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	cfg.NC = env.connect()
	cfg.KillTasksOnStop = true
	// The agent keeps its id, which the master already knows: wait for
	// its own registration and heartbeats, not the first agent's.
	registersBefore := env.master.registerCount()
	env.master.mu.Lock()
	heartbeatsBefore := len(env.master.heartbeats)
	env.master.mu.Unlock()
	b := env.start(env.newAgent(cfg))
	waitFor(t, 10*time.Second, "the restarted agent registered", func() bool { return env.master.registerCount() > registersBefore })
	waitFor(t, 10*time.Second, "the task re-adopted", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		tk, ok := b.tasks["stay.1"]
		return ok && tk.state == events.TaskRunning && tk.cgroup != nil
	})
	procs := readControl(t, p, "memory", "cgroup.procs")
	if procs != strconv.Itoa(cp.Pid) {
		t.Errorf("the cgroup holds %q, want the task's pid %d", procs, cp.Pid)
	}
	if got := readLimit(t, p, "memory", "memory.limit_in_bytes", "memory.max"); got != strconv.Itoa(48<<20) {
		t.Errorf("memory limit after re-adoption = %s", got)
	}
	if !cgroupGone(stray) {
		t.Error("the stray cgroup of no task was not removed")
	}
	waitFor(t, 5*time.Second, "a heartbeat with the adopted task's statistics", func() bool {
		env.master.mu.Lock()
		defer env.master.mu.Unlock()
		n := len(env.master.heartbeats)
		if n <= heartbeatsBefore || len(env.master.heartbeats[n-1].Tasks) != 1 {
			return false
		}
		s := env.master.heartbeats[n-1].Tasks[0].Statistics
		return s != nil && s.MemLimitBytes == 48<<20
	})

	if ack := env.kill(env.registered(b), events.KillRequest{TaskID: "stay.1"}); ack.Error != "" {
		t.Fatalf("kill: %s", ack.Error)
	}
	env.master.waitStatus(t, "stay.1", events.TaskKilled)
	waitFor(t, 10*time.Second, "the adopted task's cgroup removed", func() bool { return cgroupGone(p) })
}

// withoutStatistics is reports with their usage left out, to compare
// the rest.
// statKey is key's value in a "key value" file's text (cpu.stat).
func statKey(text, key string) string {
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return v
		}
	}
	return ""
}

func withoutStatistics(reports []events.TaskReport) []events.TaskReport {
	out := slices.Clone(reports)
	for i := range out {
		out[i].Statistics = nil
	}
	return out
}

// moveToOwnCgroup moves pid out of its task's cgroup into the test
// process's own, in every v1 hierarchy the agent uses.
func moveToOwnCgroup(t *testing.T, pid int) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !slices.Contains([]string{"memory", "cpu", "cpuacct", "pids"}, parts[1]) {
			continue
		}
		procs := filepath.Join("/sys/fs/cgroup", parts[1], parts[2], "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParentHoldsTheAdvertisedResources(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config() // advertises cpus 2, mem 1024
	a := env.newAgent(cfg)
	p := a.cgroups.Paths()
	limits := []struct{ controller, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(1 << 30)},
		{"cpu", "cpu.cfs_quota_us", "200000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
	}
	name := p.V1["memory"]
	if p.V2 != "" {
		limits = []struct{ controller, file, want string }{
			{"memory", "memory.max", strconv.Itoa(1 << 30)},
			{"cpu", "cpu.max", "200000 100000"},
		}
		name = p.V2
	}
	for _, f := range limits {
		if got := readControl(t, p, f.controller, f.file); got != f.want {
			t.Errorf("the agent's parent %s = %s, want %s", f.file, got, f.want)
		}
	}
	if want := "/" + DefaultCgroupParent(testNode, cfg.WorkDir); !strings.HasSuffix(name, want) {
		t.Errorf("parent = %s, want it named after the agent", name)
	}
}

func TestGatedTaskGetsItsEnvExactly(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	// Names no shell would pass on: the start gate execs the task
	// itself, no shell in between.
	req := events.LaunchRequest{
		Task:   events.Task{ID: "env.1", AppID: "/env"},
		Args:   []string{"env"},
		Env:    map[string]string{"a.b": "1", "X-Y": "2"},
		Limits: &events.TaskLimits{Cpus: 0.5, Mem: 32},
	}
	if ack := env.launch(id, req); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "env.1", events.TaskFinished)
	out := sandboxFile(cfg, "env.1", "stdout")
	for _, want := range []string{"\na.b=1\n", "\nX-Y=2\n"} {
		if !strings.Contains("\n"+out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

func TestUsageRidesOnHeartbeatsOnlyEveryStatisticsInterval(t *testing.T) {
	env := newTestEnv(t)
	cfg := env.config()
	cfg.StatisticsInterval = time.Hour
	a := env.start(env.newAgent(cfg))
	id := env.registered(a)
	if ack := env.launch(id, limitedTask("quiet.1", "exec sleep 300", 0.1, 32)); ack.Error != "" {
		t.Fatalf("launch: %s", ack.Error)
	}
	env.master.waitStatus(t, "quiet.1", events.TaskRunning)
	withTask := func() (n, withStats int) {
		env.master.mu.Lock()
		defer env.master.mu.Unlock()
		for _, hb := range env.master.heartbeats {
			if len(hb.Tasks) == 1 {
				n++
				if hb.Tasks[0].Statistics != nil {
					withStats++
				}
			}
		}
		return n, withStats
	}
	waitFor(t, 10*time.Second, "ten heartbeats with the task", func() bool { n, _ := withTask(); return n >= 10 })
	// The agent's first heartbeat carries usage; then none for an hour.
	if n, withStats := withTask(); withStats > 1 {
		t.Errorf("%d of %d heartbeats carried usage within one statistics interval, want at most one", withStats, n)
	}
}
