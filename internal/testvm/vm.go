// Package testvm runs a package's tests in a VM: Debian's kernel in QEMU,
// with cgroup v2 alone mounted, and the package's own test binary, built
// static, as the VM's /init. The test machines have cgroup v1; the code
// that has a v2 path of its own (internal/cgroup, the agent's isolation)
// runs its tests there too. Test support only: nothing outside tests
// imports it.
//
// A package using it calls Main first in its TestMain (as process 1 the
// binary sets the VM up and runs its tests as its child), and Run from a
// test of its own, which checks the inner tests' result.
package testvm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vmTimeout bounds the tests in the VM (-test.timeout); QEMU gets a
// minute more. vmMemoryMB is the VM's memory.
const (
	vmTimeout  = 3 * time.Minute
	vmMemoryMB = 512
)

// Result is what the VM printed, and how long it took.
type Result struct {
	Lines  []string // the console, the tests' output among it
	Accel  string   // KVM or TCG
	Kernel string
	Build  time.Duration // the test binary and initramfs
	Booted time.Duration // from QEMU's start to init's first line
	Ran    time.Duration // from QEMU's start to its end
}

// Output is the console as one text.
func (r Result) Output() string { return strings.Join(r.Lines, "\n") }

// Busybox is the static shell the VM's tasks run, as on the host (a make
// test dependency): /bin/busybox, with /bin/sh and its other applets
// beside it.
const Busybox = "/bin/busybox"

// Service is the cgroup the tests run in, as an agent's service would on
// a systemd host: the root hands it memory, cpu and pids, and the code
// under test must hand them on itself.
const Service = "atoll.service"

// envInside marks the tests run inside the VM.
const envInside = "ATOLL_TESTVM"

// Inside reports whether this test binary runs in the VM, as init's
// child.
func Inside() bool { return os.Getenv(envInside) == "1" }

// endMarker ends the VM's console output, with the tests' exit status.
const endMarker = "atoll-vm: tests exited "

// initMarker starts init's own output.
const initMarker = "atoll-vm: init"

// configPath is where init finds what to run (vmConfig, JSON).
const configPath = "/etc/atoll-vm.json"

// vmConfig is what Run tells init.
type vmConfig struct {
	Args    []string      `json:"args"`
	Timeout time.Duration `json:"timeout"`
}

// Lacking fails the test under CI=true (where every dependency is
// installed and tests run as root), and skips it elsewhere.
func Lacking(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// Run boots the VM with the calling package's test binary as its init,
// runs the named tests there and returns what it printed once each of
// them passed (none skipped); a failure, a test missing, or a VM that
// ends without their status fails t with the console. It skips under -short, and where there is no
// QEMU, busybox or kernel (fails with CI=true).
func Run(t *testing.T, tests ...string) Result {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a VM")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		Lacking(t, "no qemu-system-x86_64 (apt-get install qemu-system-x86)")
	}
	if _, err := os.Stat(Busybox); err != nil {
		Lacking(t, "no static busybox (apt-get install busybox-static)")
	}
	names := make([]string, len(tests))
	for i, n := range tests {
		names[i] = regexp.QuoteMeta(n)
	}
	args := []string{"-test.run=^(" + strings.Join(names, "|") + ")$"}
	var res Result
	start := time.Now()
	kernel, err := debianKernel()
	if err != nil {
		Lacking(t, "no kernel for the VM: "+err.Error())
	}
	res.Kernel = kernel
	built := time.Now()
	initrd := buildInitramfs(t, t.TempDir(), args)
	res.Build = time.Since(built)

	accel, accelName := vmAccel()
	res.Accel = accelName
	ctx, cancel := context.WithTimeout(t.Context(), vmTimeout+time.Minute)
	defer cancel()
	qargs := append(accel,
		"-m", strconv.Itoa(vmMemoryMB), "-smp", "2",
		// No network device at all (the tests use loopback); the
		// console is the serial port.
		"-nodefaults", "-nic", "none", "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-no-reboot", "-kernel", kernel, "-initrd", initrd,
		// loglevel 3: a panic shows, the OOM killer's reports (which
		// would cut the tests' lines) do not.
		"-append", "console=ttyS0 panic=-1 quiet loglevel=3 cgroup_no_v1=all")
	cmd := exec.CommandContext(ctx, qemu, qargs...)
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
	status := -1
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		res.Lines = append(res.Lines, line)
		if res.Booted == 0 && strings.HasPrefix(line, initMarker) {
			res.Booted = time.Since(boot)
		}
		if s, ok := strings.CutPrefix(line, endMarker); ok {
			status, _ = strconv.Atoi(s)
		}
	}
	werr := cmd.Wait()
	res.Ran = time.Since(boot)
	if status == -1 {
		t.Fatalf("the VM (%s) ended without the tests' exit status after %s (qemu: %v, %s):\n%s",
			accelName, res.Ran.Round(time.Millisecond), werr, strings.TrimSpace(stderr.String()), res.Output())
	}
	if status != 0 {
		t.Fatalf("the tests failed on cgroup v2 (exit status %d):\n%s", status, res.Output())
	}
	t.Logf("kernel %s; built the initramfs in %s; %s: init started %s after qemu, tests done in %s (%s in all)",
		kernel, res.Build.Round(time.Millisecond), accelName, res.Booted.Round(time.Millisecond),
		res.Ran.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	res.passed(t, tests...)
	return res
}

// passed fails t unless every one of names passed in the VM and nothing
// skipped, and logs the tests' lines.
func (r Result) passed(t *testing.T, names ...string) {
	t.Helper()
	out := r.Output()
	for _, name := range names {
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
	for _, line := range r.Lines {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, initMarker) || strings.Contains(l, "_test.go:") || strings.HasPrefix(l, "--- ") {
			t.Logf("VM: %s", l)
		}
	}
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

// buildInitramfs writes the VM's initramfs into dir: the package's tests
// as a static /init, busybox with its applets in /bin (the tasks' shell
// and tools), a user database with root and nobody (tasks run as
// nobody), and init's config.
func buildInitramfs(t *testing.T, dir string, args []string) string {
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
	bb, err := os.ReadFile(Busybox)
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(Busybox, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	cfg, err := json.Marshal(vmConfig{Args: args, Timeout: vmTimeout})
	if err != nil {
		t.Fatal(err)
	}
	files := []cpioFile{
		{name: "dev", mode: cpioDir | 0o755},
		{name: "dev/console", mode: cpioChar | 0o600, rdev: [2]uint32{5, 1}},
		{name: "etc", mode: cpioDir | 0o755},
		{name: "etc/passwd", mode: cpioReg | 0o644, data: []byte(
			"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{name: "etc/group", mode: cpioReg | 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{name: strings.TrimPrefix(configPath, "/"), mode: cpioReg | 0o644, data: cfg},
		{name: "bin", mode: cpioDir | 0o755},
		{name: "bin/busybox", mode: cpioReg | 0o755, data: bb},
		{name: "init", mode: cpioReg | 0o755, data: initBin},
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" && !strings.Contains(applet, "/") {
			files = append(files, cpioFile{name: "bin/" + applet, mode: cpioLink | 0o777, data: []byte("busybox")})
		}
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
