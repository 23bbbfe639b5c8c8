package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/atollhq/atoll/agent"
	"github.com/atollhq/atoll/events/dockerparam"
)

// containerFlags are an agent's flags for tasks run from images, their
// sandboxes and logs; atoll dev passes them to its agents.
type containerFlags struct {
	runtime, insecureRegistries, registryCredentials string
	sandboxGCDelay                                   time.Duration
	logMaxSize                                       string
	hostVolumes, caps                                string
}

func (f *containerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.runtime, "container-runtime", "runc", "OCI runtime that runs tasks from images (an agent without it runs host tasks; container tasks fail, saying so)")
	fs.StringVar(&f.insecureRegistries, "insecure-registries", "", "registries (host:port, comma-separated) pulled from over plain HTTP or unverified HTTPS; loopback registries always may be")
	fs.StringVar(&f.registryCredentials, "registry-credentials", "", "Docker config.json with registry logins: the agent's own file, mode 0600")
	fs.DurationVar(&f.sandboxGCDelay, "sandbox-gc-delay", agent.DefaultSandboxGCDelay, "how long a finished task's sandbox and a container's root filesystem stay after the task ended (and unused images after their last use); negative keeps them")
	fs.StringVar(&f.hostVolumes, "host-volumes", "", "absolute host paths (comma-separated) that containers' volumes may mount, with everything under them; default none: a host path mounted into a container is the host's files in the hands of whoever defines apps")
	fs.StringVar(&f.caps, "container-caps", "", "capabilities (comma-separated, such as NET_ADMIN; ALL for any) containers may add with the cap-add docker parameter beyond docker's default set; default none")
	fs.StringVar(&f.logMaxSize, "log-max-size", "10MB", "size at which a task's stdout or stderr is rotated to stdout.1 (stderr.1), the one older file kept; -1: no rotation")
}

// apply puts the flags into an agent config.
func (f containerFlags) apply(cfg *agent.Config) error {
	size, err := agent.ParseLogSize(f.logMaxSize)
	if err != nil {
		return fmt.Errorf("--log-max-size: %w", err)
	}
	cfg.LogMaxSize = size
	if f.sandboxGCDelay == 0 {
		return fmt.Errorf("--sandbox-gc-delay: 0 would remove a sandbox as its task ends; negative keeps them")
	}
	cfg.SandboxGCDelay = f.sandboxGCDelay
	cfg.Containers.Runtime = f.runtime
	cfg.Containers.RegistryCredentials = f.registryCredentials
	cfg.Containers.InsecureRegistries = commaList(f.insecureRegistries)
	for _, h := range commaList(f.hostVolumes) {
		if !filepath.IsAbs(h) {
			return fmt.Errorf("--host-volumes: %q is not an absolute path", h)
		}
		cfg.Containers.Policy.HostVolumes = append(cfg.Containers.Policy.HostVolumes, filepath.Clean(h))
	}
	for _, c := range commaList(f.caps) {
		if _, err := dockerparam.Capability(c); err != nil {
			return fmt.Errorf("--container-caps: %q: %w", c, err)
		}
		cfg.Containers.Policy.Capabilities = append(cfg.Containers.Policy.Capabilities, c)
	}
	return nil
}

// commaList is a comma-separated flag's values, blanks dropped.
func commaList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
