package cgroup

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// TestMain is also the /init of the VM TestCgroupV2InAVM boots: as
// process 1 it sets the VM up and runs this package's tests in it.
func TestMain(m *testing.M) {
	if os.Getpid() == 1 {
		vmInit()
	}
	os.Exit(m.Run())
}

// vmEnv marks the test run inside the VM, for TestCgroupV2InAVM.
const vmEnv = "ATOLL_CGROUP_VM"

// vmEndMarker ends the VM's console output, with the tests' exit status.
const vmEndMarker = "atoll-vm: tests exited "

// vmService is the cgroup the tests run in, as an agent's service would
// on a systemd host: the root hands it memory, cpu and pids, and the
// agent must hand them on to its tasks' parent itself.
const vmService = "atoll.service"

// vmInit mounts what the tests need, with cgroup v2 alone at
// /sys/fs/cgroup, runs the tests, prints their exit status and powers the
// VM off. It never returns.
func vmInit() {
	status := 1
	defer func() {
		fmt.Printf("%s%d\n", vmEndMarker, status)
		syscall.Sync()
		_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
		select {} // init must not exit (that is a panic)
	}()
	fail := func(format string, args ...any) {
		fmt.Printf("atoll-vm: "+format+"\n", args...)
	}
	for _, m := range []struct{ src, dir, fstype, data string }{
		{"devtmpfs", "/dev", "devtmpfs", ""},
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", "nsdelegate"},
		{"tmpfs", "/tmp", "tmpfs", ""},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			fail("%v", err)
			return
		}
		if err := syscall.Mount(m.src, m.dir, m.fstype, 0, m.data); err != nil {
			fail("mount %s: %v", m.dir, err)
			return
		}
	}
	// The kernel gave us the initramfs's /dev/console; devtmpfs's is the
	// same device. Make sure the tests' output reaches it.
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		for fd := range 3 {
			_ = syscall.Dup2(int(c.Fd()), fd)
		}
	}
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	fmt.Printf("atoll-vm: init on Linux %s\n", utsString(uts.Release[:]))
	if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory +cpu +pids"), 0); err != nil {
		fail("enable the controllers: %v", err)
		return
	}
	svc := "/sys/fs/cgroup/" + vmService
	if err := os.Mkdir(svc, 0o755); err != nil {
		fail("%v", err)
		return
	}
	dir, err := os.Open(svc)
	if err != nil {
		fail("%v", err)
		return
	}
	args := append([]string{"/init", "-test.v", "-test.count=1", "-test.timeout=3m"}, os.Args[1:]...)
	env := []string{vmEnv + "=1", "PATH=/bin", "HOME=/tmp", "TMPDIR=/tmp"}
	pid, err := syscall.ForkExec("/init", args, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())},
	})
	if err != nil {
		fail("start the tests: %v", err)
		return
	}
	// As process 1 we reap every orphan (the tasks' sleeps the tests
	// kill) until the tests themselves end.
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fail("wait: %v", err)
			return
		}
		if got == pid {
			status = ws.ExitStatus()
			if ws.Signaled() {
				fail("tests killed by %v", ws.Signal())
				status = 128 + int(ws.Signal())
			}
			return
		}
	}
}

func utsString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
