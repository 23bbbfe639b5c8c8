package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupRoot is where the cgroup filesystems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// MemoryCgroupDir is the memory cgroup folder runc gives a container with
// cgroupsPath: under cgroupRoot/memory on cgroup v1 (and hybrid hosts),
// under cgroupRoot itself on v2; a relative path sits under the cgroup of
// the process that ran runc, this one.
func MemoryCgroupDir(cgroupsPath string) (string, error) {
	v1 := filepath.Join(cgroupRoot, "memory")
	if _, err := os.Stat(v1); err == nil {
		base, err := ownCgroup("memory")
		if err != nil {
			return "", err
		}
		return join(v1, base, cgroupsPath), nil
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		base, err := ownCgroup("")
		if err != nil {
			return "", err
		}
		return join(cgroupRoot, base, cgroupsPath), nil
	}
	return "", errors.New("no memory cgroup controller mounted")
}

func join(mount, own, cgroupsPath string) string {
	if filepath.IsAbs(cgroupsPath) {
		return filepath.Join(mount, cgroupsPath)
	}
	return filepath.Join(mount, own, cgroupsPath)
}

// ownCgroup is this process's cgroup in the v1 hierarchy holding
// controller, or in the v2 hierarchy when controller is "".
func ownCgroup(controller string) (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if controller == "" && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		for _, c := range strings.Split(parts[1], ",") {
			if controller != "" && c == controller {
				return parts[2], nil
			}
		}
	}
	return "", fmt.Errorf("no %q cgroup in /proc/self/cgroup", controller)
}

// OOMKilled reports whether the kernel's OOM killer killed a process of
// the container with cgroupsPath: the "oom_kill" counter of
// memory.oom_control (v1) or memory.events (v2). A SIGKILL alone is no
// proof (a kill -9 looks the same). Read it before Runtime.Delete, which
// removes the cgroup.
func OOMKilled(cgroupsPath string) (bool, error) {
	dir, err := MemoryCgroupDir(cgroupsPath)
	if err != nil {
		return false, err
	}
	for _, name := range []string{"memory.oom_control", "memory.events"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("oom counter: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, " "); ok && k == "oom_kill" {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				return n > 0, err
			}
		}
	}
	return false, fmt.Errorf("oom counter: no oom_kill in %s", dir)
}
