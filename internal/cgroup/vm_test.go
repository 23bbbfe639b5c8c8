package cgroup

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vmTests must pass inside the VM: every test of this package that makes
// cgroups, and the check that they made them on cgroup v2.
var vmTests = []string{
	"TestCgroupV2InAVM",
	"TestParentAndTaskGroupOnTheHost",
	"TestMemoryLimitOOMKillsWithMesosMessage",
	"TestCPUQuotaHoldsABusyLoop",
	"TestPidsLimitHolds",
	"TestReopenedParentFindsItsTasks",
}

// The test machines have cgroup v1; the v2 code runs in a VM: Debian's
// kernel with cgroup v2 alone mounted, and this package's tests (the same
// ones the host runs on v1) run there as its init's child.
func TestCgroupV2InAVM(t *testing.T) {
	if os.Getenv(vmEnv) == "1" {
		checkInsideV2(t)
		return
	}
	if testing.Short() {
		t.Skip("boots a VM")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		lacking(t, "no qemu-system-x86_64 (apt-get install qemu-system-x86)")
	}
	if _, err := os.Stat(busybox); err != nil {
		lacking(t, "no static busybox (apt-get install busybox-static)")
	}
	start := time.Now()
	kernel, err := debianKernel()
	if err != nil {
		lacking(t, "no kernel for the VM: "+err.Error())
	}
	kernelTime := time.Since(start)
	dir := t.TempDir()
	initrd := buildInitramfs(t, dir)
	buildTime := time.Since(start) - kernelTime

	accel, accelName := vmAccel()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	args := append(accel,
		"-m", "512", "-smp", "2",
		// No network device at all; the console is the serial port.
		"-nodefaults", "-nic", "none", "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-no-reboot", "-kernel", kernel, "-initrd", initrd,
		// loglevel 3: a panic shows, the OOM killer's reports (which
		// would cut the tests' lines) do not.
		"-append", "console=ttyS0 panic=-1 quiet loglevel=3 cgroup_no_v1=all")
	cmd := exec.CommandContext(ctx, qemu, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	boot := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	var booted time.Duration
	status := -1
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		lines = append(lines, line)
		if booted == 0 && strings.HasPrefix(line, "atoll-vm: init") {
			booted = time.Since(boot)
		}
		if s, ok := strings.CutPrefix(line, vmEndMarker); ok {
			status, _ = strconv.Atoi(s)
		}
	}
	werr := cmd.Wait()
	run := time.Since(boot)
	out := strings.Join(lines, "\n")
	if status == -1 {
		t.Fatalf("the VM (%s) ended without the tests' exit status after %s (qemu: %v, %s):\n%s",
			accelName, run.Round(time.Millisecond), werr, strings.TrimSpace(stderr.String()), out)
	}
	if status != 0 {
		t.Fatalf("the tests failed on cgroup v2 (exit status %d):\n%s", status, out)
	}
	for _, name := range vmTests {
		if !strings.Contains(out, "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass on cgroup v2", name)
		}
	}
	if strings.Contains(out, "--- SKIP") {
		t.Error("a test skipped on cgroup v2")
	}
	if t.Failed() {
		t.Fatalf("the VM's console:\n%s", out)
	}
	t.Logf("kernel %s (%s); built the initramfs in %s; %s: init started %s after qemu, tests done in %s",
		kernel, kernelTime.Round(time.Millisecond), buildTime.Round(time.Millisecond), accelName,
		booted.Round(time.Millisecond), run.Round(time.Millisecond))
	for _, line := range lines {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "atoll-vm: init") || strings.Contains(l, ".go:") || strings.HasPrefix(l, "--- ") {
			t.Logf("VM: %s", l)
		}
	}
}

// checkInsideV2: inside the VM, the tests beside this one run on cgroup
// v2, with its memory, cpu and pids controllers, and no v1 hierarchy.
func checkInsideV2(t *testing.T) {
	if v2, err := useV2(); err != nil || !v2 {
		t.Fatalf("useV2 = %v (%v) in the VM", v2, err)
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "cgroup" {
			t.Errorf("a cgroup v1 hierarchy is mounted: %s", line)
		}
	}
	ctrl, err := os.ReadFile(filepath.Join(unifiedMount, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	have := strings.Fields(string(ctrl))
	for _, c := range []string{"memory", "cpu", "pids"} {
		if !strings.Contains(" "+strings.Join(have, " ")+" ", " "+c+" ") {
			t.Errorf("no %s controller in %v", c, have)
		}
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(own), "0::/"+vmService) {
		t.Errorf("/proc/self/cgroup = %q, want v2's one line, under /%s", own, vmService)
	}
	t.Logf("cgroup v2 alone, controllers %v; the tests run in %s", have, strings.TrimSpace(string(own)))
}

// vmAccel is how QEMU runs the VM: with KVM where the hardware's KVM is
// there, else with TCG, QEMU's emulator (slower, the same kernel). A
// /dev/kvm of another backend (kvm_pvm, as on some cloud VMs, runs only
// guest kernels built for it) hangs Debian's kernel, so it counts as none.
func vmAccel() ([]string, string) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		_ = f.Close()
		for _, m := range []string{"kvm_intel", "kvm_amd"} {
			if _, err := os.Stat("/sys/module/" + m); err == nil {
				return []string{"-enable-kvm", "-cpu", "host"}, "KVM"
			}
		}
	}
	return []string{"-accel", "tcg", "-cpu", "max"}, "TCG"
}

// buildInitramfs writes the VM's initramfs into dir: this package's
// tests as a static /init (TestMain runs them as process 1's child) and
// busybox, the tasks' shell.
func buildInitramfs(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "init")
	build := exec.Command(goTool, "test", "-c", "-o", bin, ".")
	// Static (no cgo, so no -race): the VM has no C library.
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the VM's test binary: %v\n%s", err, out)
	}
	initBin, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	files := []cpioFile{
		{name: "dev", mode: cpioDir | 0o755},
		{name: "dev/console", mode: cpioChar | 0o600, rdev: [2]uint32{5, 1}},
		{name: "bin", mode: cpioDir | 0o755},
		{name: "bin/busybox", mode: cpioReg | 0o755, data: bb},
		{name: "init", mode: cpioReg | 0o755, data: initBin},
	}
	path := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeCpio(f, files); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
