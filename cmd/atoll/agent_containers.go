package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/atollhq/atoll/agent"
)

// containerFlags are an agent's flags for tasks run from images, their
// sandboxes and logs; atoll dev passes them to its agents.
type containerFlags struct {
	runtime, insecureRegistries, registryCredentials string
	sandboxGCDelay                                   time.Duration
	logMaxSize                                       string
}

func (f *containerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.runtime, "container-runtime", "runc", "OCI runtime that runs tasks from images (an agent without it runs host tasks; container tasks fail, saying so)")
	fs.StringVar(&f.insecureRegistries, "insecure-registries", "", "registries (host:port, comma-separated) pulled from over plain HTTP or unverified HTTPS; loopback registries always may be")
	fs.StringVar(&f.registryCredentials, "registry-credentials", "", "Docker config.json with registry logins: the agent's own file, mode 0600")
	fs.DurationVar(&f.sandboxGCDelay, "sandbox-gc-delay", agent.DefaultSandboxGCDelay, "how long a finished task's sandbox and a container's root filesystem stay after the task ended (and unused images after their last use); negative keeps them")
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
	for _, r := range strings.Split(f.insecureRegistries, ",") {
		if r = strings.TrimSpace(r); r != "" {
			cfg.Containers.InsecureRegistries = append(cfg.Containers.InsecureRegistries, r)
		}
	}
	return nil
}
