package container

import (
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestDockerParametersMapOntoTheSpec(t *testing.T) {
	task, err := ApplyParameters(Task{ID: "p.1", Rootfs: "/r", Sandbox: "/s", NetNS: "/ns", Env: map[string]string{"A": "app"}}, []Parameter{
		{"cap-add", "net_admin"}, {"cap-drop", "CAP_NET_RAW"}, {"env", "B=param"}, {"hostname", "box"},
		{"label", "team=core"}, {"oom-score-adj", "500"}, {"pids-limit", "50"}, {"read-only", "true"},
		{"shm-size", "128m"}, {"sysctl", "net.core.somaxconn=1024"}, {"tmpfs", "/scratch:size=8m"},
		{"ulimit", "nofile=100:200"}, {"user", "nobody"}, {"workdir", "/work"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if task.User != "nobody" || task.Env["A"] != "app" || task.Env["B"] != "param" || task.PidsMax != 50 {
		t.Errorf("task %+v", task)
	}
	s, err := Spec(task, v1.Config{Cmd: []string{"/x"}, WorkingDir: "/image"}, User{})
	if err != nil {
		t.Fatal(err)
	}
	caps := s.Process.Capabilities.Bounding
	if !slices.Contains(caps, "CAP_NET_ADMIN") || slices.Contains(caps, "CAP_NET_RAW") || !slices.Contains(caps, "CAP_CHOWN") {
		t.Errorf("capabilities %v: want docker's defaults + NET_ADMIN - NET_RAW", caps)
	}
	if !s.Root.Readonly || s.Hostname != "box" || s.Process.Cwd != "/work" || s.Annotations["team"] != "core" ||
		*s.Process.OOMScoreAdj != 500 || s.Linux.Sysctl["net.core.somaxconn"] != "1024" ||
		s.Process.Rlimits[0].Type != "RLIMIT_NOFILE" || s.Process.Rlimits[0].Soft != 100 || s.Process.Rlimits[0].Hard != 200 {
		t.Errorf("spec %+v / %+v", s.Process, s.Linux)
	}
	var shm, scratch string
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/dev/shm":
			shm = strings.Join(m.Options, ",")
		case "/scratch":
			scratch = m.Type + " " + strings.Join(m.Options, ",")
		}
	}
	if !strings.Contains(shm, "size=134217728") || scratch != "tmpfs nosuid,nodev,size=8m" {
		t.Errorf("/dev/shm %q, /scratch %q", shm, scratch)
	}

	for _, bad := range []Parameter{
		{"privileged", "true"}, {"net", "host"}, {"volume", "/a:/b"}, {"cap-add", "FLY"},
		{"ulimit", "nofile=x"}, {"ulimit", "bogus=1"}, {"env", "NOEQUALS"}, {"sysctl", "vm.swappiness=1"},
		{"workdir", "relative"}, {"shm-size", "lots"}, {"oom-score-adj", "5000"},
	} {
		_, err := ApplyParameters(Task{}, []Parameter{bad})
		if err == nil || !strings.Contains(err.Error(), `docker parameter "`+bad.Key+`"`) {
			t.Errorf("%v: %v, want an error naming it", bad, err)
		}
	}
	// net.* sysctls need the task's own network namespace.
	task.NetNS = ""
	if _, err := Spec(task, v1.Config{Cmd: []string{"/x"}}, User{}); err == nil {
		t.Error("a net.* sysctl on the host network was accepted")
	}
}
