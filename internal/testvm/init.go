package testvm

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// Main makes this test binary the VM's init when it runs as process 1,
// and then never returns; elsewhere it returns at once. Call it first in
// TestMain.
func Main() {
	if os.Getpid() == 1 {
		vmInit()
	}
}

// vmInit mounts what the tests need, with cgroup v2 alone at
// /sys/fs/cgroup, brings loopback up, runs the tests in the Service
// cgroup, prints their exit status and powers the VM off. It never
// returns.
func vmInit() {
	status := 1
	defer func() {
		fmt.Printf("%s%d\n", endMarker, status)
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
		{"tmpfs", "/tmp", "tmpfs", "mode=1777"},
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
	fmt.Printf("%s on Linux %s\n", initMarker, utsString(uts.Release[:]))
	var cfg vmConfig
	data, err := os.ReadFile(configPath)
	if err == nil {
		err = json.Unmarshal(data, &cfg)
	}
	if err != nil {
		fail("read %s: %v", configPath, err)
		return
	}
	// Tests on loopback (an embedded NATS server on 127.0.0.1) need it up;
	// the VM has no other interface.
	if err := loopbackUp(); err != nil {
		fail("bring lo up: %v", err)
		return
	}
	if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory +cpu +pids"), 0); err != nil {
		fail("enable the controllers: %v", err)
		return
	}
	svc := "/sys/fs/cgroup/" + Service
	if err := os.Mkdir(svc, 0o755); err != nil {
		fail("%v", err)
		return
	}
	dir, err := os.Open(svc)
	if err != nil {
		fail("%v", err)
		return
	}
	args := append([]string{"/init", "-test.v", "-test.count=1", "-test.timeout=" + cfg.Timeout.String()}, cfg.Args...)
	env := []string{envInside + "=1", "PATH=/bin", "HOME=/tmp", "TMPDIR=/tmp"}
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

// loopbackUp sets lo's IFF_UP flag, as `ip link set lo up` does: the
// kernel gives it 127.0.0.1/8 by itself.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	// struct ifreq: the name, then (a union of which we use) the flags.
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return fmt.Errorf("SIOCGIFFLAGS: %w", e)
	}
	ifr.flags |= syscall.IFF_UP | syscall.IFF_RUNNING
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return fmt.Errorf("SIOCSIFFLAGS: %w", e)
	}
	return nil
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
