package container

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/atollhq/atoll/agent/cninet"
	"github.com/atollhq/atoll/agent/imagestore"
)

// Driver runs tasks from images: the image store, the runtime and, for
// bridged tasks, the CNI network, in the right order both ways. It is
// what the agent's launch path calls for an app with a container.
type Driver struct {
	Images  *imagestore.Store
	Runtime *Runtime
	// Bridge gives "container/bridge" tasks their namespace; nil means
	// the agent offers host networking only.
	Bridge *cninet.Network
	// Dir holds a folder per task (bundle, root filesystem layers):
	// the agent's, 0700.
	Dir string
}

// validID is what runc accepts as a container id.
var validID = regexp.MustCompile(`^[\w+.-]+$`)

// Launch is one task to start.
type Launch struct {
	Task
	Image     string // Marathon's container.docker.image
	ForcePull bool   // Marathon's forcePullImage
	// RegistryUser and RegistryPassword are Marathon's
	// container.docker.credential (principal, secret): a secret, like env.
	RegistryUser, RegistryPassword string
	// Bridged puts the task on the bridge with Ports mapped (Marathon's
	// networks: [{mode: container/bridge}] and portMappings); otherwise it
	// shares the host's network.
	Bridged bool
	Ports   []cninet.PortMapping
	// Parameters are Marathon's container.docker.parameters; an
	// unsupported one fails the start, naming it.
	Parameters []Parameter
	Stdout     string // the sandbox's stdout file
	Stderr     string
}

// Running is a started task.
type Running struct {
	*Process
	IP    net.IP // the container's address on the bridge; nil on the host network
	Image *imagestore.Image
}

// Start pulls the image (unless cached, or ForcePull), mounts the task's
// root filesystem, attaches it to the bridge when Bridged, and runs it.
// On failure nothing stays behind and the error says which step failed
// (a bad reference, an unreachable registry, a missing user, runc's own
// message...).
func (d *Driver) Start(ctx context.Context, l Launch) (_ *Running, err error) {
	if !validID.MatchString(l.ID) {
		return nil, fmt.Errorf("container: task id %q is not a container id (letters, digits, _ + - .)", l.ID)
	}
	t, err := ApplyParameters(l.Task, l.Parameters)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", l.ID, err)
	}
	img, err := d.Images.Pull(ctx, l.Image, imagestore.PullOptions{Force: l.ForcePull, Username: l.RegistryUser, Password: l.RegistryPassword})
	if err != nil {
		return nil, err
	}
	dir := d.taskDir(l.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("container %s: %w", l.ID, err)
	}
	defer func() {
		if err != nil {
			d.Cleanup(context.WithoutCancel(ctx), l.ID)
			d.Purge(l.ID)
		}
	}()
	rootfs, err := d.Images.Rootfs(l.ID, img, filepath.Join(dir, "fs"))
	if err != nil {
		return nil, err
	}
	run := &Running{Image: img}
	t.Rootfs = rootfs
	if l.Bridged {
		if d.Bridge == nil {
			return nil, fmt.Errorf("container %s: this agent has no bridge network (container/bridge)", l.ID)
		}
		att, err := d.Bridge.Attach(ctx, l.ID, l.Ports)
		if err != nil {
			return nil, err
		}
		t.NetNS, run.IP = att.NetNS, att.IP
	}
	user := t.User
	if user == "" {
		user = img.Config.User
	}
	u, err := ResolveUser(rootfs, user)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", l.ID, err)
	}
	spec, err := Spec(t, img.Config, u)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", l.ID, err)
	}
	run.Process, err = d.Runtime.Start(ctx, filepath.Join(dir, "bundle", l.ID), spec, l.Stdout, l.Stderr)
	if err != nil {
		return nil, err
	}
	return run, nil
}

// Stop sends SIGTERM to task id's container, SIGKILL after grace, and
// returns once it is stopped. Cleanup then removes it.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	return d.Runtime.Kill(ctx, id, grace)
}

// Ended is what the agent reports of a container that stopped.
type Ended struct {
	// OOMKilled: the kernel killed it past its memory limit (Mesos's
	// reason "Memory limit exceeded").
	OOMKilled bool
}

// Cleanup removes what task id had, in order: the runtime's container
// (after reading its OOM counter), the bridge attachment, the namespace,
// the root filesystem's mount. The task's folder stays (its writes, the
// bundle with runc's log and the exit status) until Purge or
// PurgeFinished. Call it once the container's process has ended (or to
// undo a failed start); a second call is fine.
func (d *Driver) Cleanup(ctx context.Context, id string) (Ended, error) {
	var end Ended
	var errs []error
	if st, err := d.Runtime.State(ctx, id); err == nil {
		if st.Status != "stopped" {
			errs = append(errs, d.Runtime.Kill(ctx, id, 0))
		}
		if spec, err := readSpec(st.Bundle); err == nil && spec.Linux != nil {
			end.OOMKilled, _ = OOMKilled(spec.Linux.CgroupsPath)
		}
	}
	errs = append(errs, d.Runtime.Delete(ctx, id))
	if d.Bridge != nil {
		if _, err := os.Stat(d.Bridge.NetNSPath(id)); err == nil {
			errs = append(errs, d.Bridge.Detach(ctx, id))
		}
	}
	dir := d.taskDir(id)
	errs = append(errs, d.Images.Unmount(id, filepath.Join(dir, "fs")))
	if _, err := os.Stat(dir); err == nil {
		// The finish time PurgeFinished counts from.
		errs = append(errs, os.WriteFile(filepath.Join(dir, finishedFile), nil, 0o600))
	}
	if err := errors.Join(errs...); err != nil {
		return end, fmt.Errorf("container %s: cleanup: %w", id, err)
	}
	return end, nil
}

// finishedFile marks a task folder whose container was cleaned up.
const finishedFile = "finished"

// Purge removes task id's folder now (after Cleanup).
func (d *Driver) Purge(id string) error {
	if err := os.RemoveAll(d.taskDir(id)); err != nil {
		return fmt.Errorf("container %s: purge: %w", id, err)
	}
	return nil
}

// PurgeFinished removes the folders of tasks cleaned up more than delay
// ago (Mesos's --gc_delay for sandboxes) and returns their ids.
func (d *Driver) PurgeFinished(delay time.Duration) ([]string, error) {
	ents, err := os.ReadDir(d.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("container purge: %w", err)
	}
	var purged []string
	var errs []error
	for _, e := range ents {
		fi, err := os.Stat(filepath.Join(d.Dir, e.Name(), finishedFile))
		if err != nil || time.Since(fi.ModTime()) < delay {
			continue
		}
		if err := d.Purge(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		purged = append(purged, e.Name())
	}
	return purged, errors.Join(errs...)
}

// ExitCode is how task id's container ended (see the package function),
// for a container adopted after an agent restart.
func (d *Driver) ExitCode(id string) (int, bool) {
	return ExitCode(filepath.Join(d.taskDir(id), "bundle", id))
}

// Adopt finds task id's container after an agent restart: its state (the
// pid to watch; the runc process that started it belonged to the agent
// before) and its bridge address, if any.
func (d *Driver) Adopt(ctx context.Context, id string) (State, net.IP, error) {
	st, err := d.Runtime.State(ctx, id)
	if err != nil {
		return State{}, nil, err
	}
	var ip net.IP
	if d.Bridge != nil {
		if att, err := d.Bridge.Adopt(id); err == nil {
			ip = att.IP
		}
	}
	return st, ip, nil
}

func (d *Driver) taskDir(id string) string { return filepath.Join(d.Dir, id) }
