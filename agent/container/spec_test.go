package container

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The launch command follows the table of Mesos's docker-runtime isolator
// (docs/isolators/docker-runtime.md) with Marathon's cmd as a shell
// command and args as arguments.
func TestCommandFollowsMesosDockerRuntimeTable(t *testing.T) {
	ep := []string{"/ep", "-x"}
	cmd := []string{"/cmd", "c1"}
	for _, c := range []struct {
		name     string
		cmd      string
		args     []string
		ep, icmd []string
		want     []string
		err      bool
	}{
		{name: "nothing at all", err: true},
		{name: "image CMD only", icmd: cmd, want: []string{"/cmd", "c1"}},
		{name: "image ENTRYPOINT only", ep: ep, want: []string{"/ep", "-x"}},
		{name: "ENTRYPOINT + CMD", ep: ep, icmd: cmd, want: []string{"/ep", "-x", "/cmd", "c1"}},
		{name: "args, no image command", args: []string{"a"}, err: true},
		{name: "args after CMD[0]", args: []string{"a", "b"}, icmd: cmd, want: []string{"/cmd", "a", "b"}},
		{name: "args after ENTRYPOINT", args: []string{"a"}, ep: ep, want: []string{"/ep", "-x", "a"}},
		{name: "args replace CMD", args: []string{"a"}, ep: ep, icmd: cmd, want: []string{"/ep", "-x", "a"}},
		{name: "cmd, empty image", cmd: "echo hi", want: []string{"/bin/sh", "-c", "echo hi"}},
		{name: "cmd replaces both", cmd: "echo hi", ep: ep, icmd: cmd, want: []string{"/bin/sh", "-c", "echo hi"}},
		{name: "cmd and args", cmd: "x", args: []string{"y"}, err: true},
	} {
		got, err := Command(c.cmd, c.args, v1.Config{Entrypoint: c.ep, Cmd: c.icmd})
		if (err != nil) != c.err || !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, %v; want %q (error %v)", c.name, got, err, c.want, c.err)
		}
	}
}

func TestTaskEnvOverridesImageEnv(t *testing.T) {
	got := Environment(v1.Config{Env: []string{"A=image", "B=image"}}, map[string]string{"B": "task", "C": "task"}, "/home/x")
	want := []string{"A=image", "B=task", "C=task",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/home/x", "MESOS_SANDBOX=/mnt/mesos/sandbox"}
	if !slices.Equal(got, want) {
		t.Errorf("env %q\nwant %q", got, want)
	}
	got = Environment(v1.Config{Env: []string{"PATH=/bin", "HOME=/app"}}, nil, "/root")
	if !slices.Equal(got[:2], []string{"PATH=/bin", "HOME=/app"}) {
		t.Errorf("image PATH/HOME replaced: %q", got)
	}
}

func TestSpecCarriesResourcesNamespacesAndVolumes(t *testing.T) {
	task := Task{
		ID: "web.1", Rootfs: "/r", Sandbox: "/s", CPUs: 0.25, MemMB: 32, PidsMax: 100,
		CgroupsPath: "atoll/web.1", NetNS: "/var/run/netns/web.1",
		Volumes: []Volume{
			{ContainerPath: "/data", HostPath: "/srv/data", ReadOnly: true},
			{ContainerPath: "cache", HostPath: "cache-dir"},
		},
	}
	s, err := Spec(task, v1.Config{Cmd: []string{"/x"}, WorkingDir: "/app"}, User{UID: 65534, GID: 65534})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 32<<20 || *r.CPU.Shares != 256 || *r.CPU.Quota != 25000 || *r.CPU.Period != 100000 || *r.Pids.Limit != 100 {
		t.Errorf("resources mem %d shares %d quota %d/%d pids %d", *r.Memory.Limit, *r.CPU.Shares, *r.CPU.Quota, *r.CPU.Period, *r.Pids.Limit)
	}
	if s.Linux.CgroupsPath != "atoll/web.1" || s.Process.Cwd != "/app" || s.Process.User.UID != 65534 || s.Root.Path != "/r" {
		t.Errorf("spec %+v %+v", s.Linux, s.Process)
	}
	var types []string
	for _, ns := range s.Linux.Namespaces {
		types = append(types, string(ns.Type)+"="+ns.Path)
	}
	if !slices.Equal(types, []string{"pid=", "mount=", "ipc=", "uts=", "network=/var/run/netns/web.1"}) {
		t.Errorf("namespaces %v", types)
	}
	binds := map[string]string{}
	for _, m := range s.Mounts {
		if m.Type == "bind" {
			binds[m.Destination] = m.Source + " " + strings.Join(m.Options, ",")
		}
	}
	for dst, want := range map[string]string{
		"/mnt/mesos/sandbox":       "/s rbind,rw",
		"/data":                    "/srv/data rbind,ro",
		"/mnt/mesos/sandbox/cache": "/s/cache-dir rbind,rw",
	} {
		if binds[dst] != want {
			t.Errorf("mount %s = %q, want %q", dst, binds[dst], want)
		}
	}
	// Host network: no network namespace entry at all.
	task.NetNS = ""
	s, _ = Spec(task, v1.Config{Cmd: []string{"/x"}}, User{})
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == "network" {
			t.Error("host networking got a network namespace")
		}
	}
	if s.Process.Cwd != SandboxPath {
		t.Errorf("cwd without WorkingDir = %q, want the sandbox", s.Process.Cwd)
	}
	task.Volumes = []Volume{{ContainerPath: "../../etc", HostPath: "x"}}
	if _, err := Spec(task, v1.Config{Cmd: []string{"/x"}}, User{}); err == nil {
		t.Error("a volume climbing out of the sandbox was accepted")
	}
}

func TestResolveUserReadsTheImagesFilesInsideItsRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\napp:x:1001:\nwheel:x:10:app,bob\n"), 0o644)
	for user, want := range map[string]User{
		"":          {UID: 0, GID: 0, Home: "/root"},
		"app":       {UID: 1000, GID: 1001, Home: "/home/app", AdditionalGids: []uint32{10}},
		"1000":      {UID: 1000, GID: 1001, Home: "/home/app", AdditionalGids: []uint32{10}},
		"4242":      {UID: 4242, GID: 4242, Home: "/"},
		"app:wheel": {UID: 1000, GID: 10, Home: "/home/app"},
		"app:7":     {UID: 1000, GID: 7, Home: "/home/app", AdditionalGids: []uint32{10}},
	} {
		got, err := ResolveUser(root, user)
		if err != nil || got.UID != want.UID || got.GID != want.GID || got.Home != want.Home || !slices.Equal(got.AdditionalGids, want.AdditionalGids) {
			t.Errorf("ResolveUser(%q) = %+v, %v; want %+v", user, got, err, want)
		}
	}
	if _, err := ResolveUser(root, "nobody"); err == nil || !strings.Contains(err.Error(), "not found in the image") {
		t.Errorf("unknown user: %v", err)
	}
	// An image whose /etc/passwd points at the host's reads its own root.
	evil := t.TempDir()
	os.MkdirAll(filepath.Join(evil, "etc"), 0o755)
	os.Symlink("/../../../../etc/shadow", filepath.Join(evil, "etc/passwd"))
	if _, err := ResolveUser(evil, "root"); err == nil {
		t.Error("a symlinked /etc/passwd was followed out of the image")
	}
}
