package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/atollhq/atoll/agent/imagestore"
	"github.com/atollhq/atoll/internal/imagetest"
)

// BenchmarkStart measures task start latency until the task's process
// runs: a host process (fork/exec), a container whose image is cached
// (overlay mount + spec + runc run), and one whose image is pulled first
// from a loopback registry (a static busybox layer and a small one).
// runtime-KB is the resident memory of the shell and the runc run process
// that stay with each container (the agent's cost per container).
func BenchmarkStart(b *testing.B) {
	b.Run("host-process", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command(imagetest.BusyboxPath, "sleep", "60")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cmd.Process.Kill()
			cmd.Wait()
			b.StartTimer()
		}
	})
	for _, cached := range []bool{true, false} {
		name := "container-uncached"
		if cached {
			name = "container-cached"
		}
		b.Run(name, func(b *testing.B) { benchContainer(b, cached) })
	}
}

func benchContainer(b *testing.B, cached bool) {
	e := newEnv(b)
	ref := e.push("bench:1", v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sleep", "60"}},
		imagetest.File{Path: "payload", Mode: 0o644, Body: bytes.Repeat([]byte("atoll"), 100000)})
	storeDir := b.TempDir()
	var rssKB int64
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		root := filepath.Join(storeDir, "cached")
		if !cached {
			root = filepath.Join(storeDir, strconv.Itoa(i))
		}
		store, err := imagestore.Open(imagestore.Options{Root: root})
		if err != nil {
			b.Fatal(err)
		}
		if cached {
			if _, err := store.Pull(context.Background(), ref, imagestore.PullOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		dir := b.TempDir()
		id := fmt.Sprintf("bench%d", i)
		b.StartTimer()

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		img, err := store.Pull(ctx, ref, imagestore.PullOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rootfs, err := store.Rootfs(id, img, filepath.Join(dir, "fs"))
		if err != nil {
			b.Fatal(err)
		}
		user, err := ResolveUser(rootfs, img.Config.User)
		if err != nil {
			b.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "sandbox"), 0o755)
		spec, err := Spec(Task{ID: id, Rootfs: rootfs, Sandbox: filepath.Join(dir, "sandbox"), MemMB: 64, CPUs: 1,
			CgroupsPath: cgroupParent + "/" + id}, img.Config, user)
		if err != nil {
			b.Fatal(err)
		}
		p, err := e.rt.Start(ctx, filepath.Join(dir, "bundle", id), spec, filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr"))
		cancel()
		if err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		rssKB = max(rssKB, treeRSS(p.Pid))
		e.rt.Kill(context.Background(), id, 0)
		p.Wait()
		e.rt.Delete(context.Background(), id)
		store.ReleaseRootfs(id, filepath.Join(dir, "fs"))
		b.StartTimer()
	}
	b.ReportMetric(float64(rssKB), "runtime-KB")
}

// treeRSS is the resident memory of pid and its descendants (the shell
// and runc run that stay with a container; not the container itself).
func treeRSS(pid int) int64 {
	n := vmRSS(pid)
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range bytes.Fields(b) {
		if c, err := strconv.Atoi(string(f)); err == nil {
			n += treeRSS(c)
		}
	}
	return n
}

func vmRSS(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			n, _ := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			return n
		}
	}
	return 0
}
