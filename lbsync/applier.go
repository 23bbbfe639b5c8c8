package lbsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// HAProxyApplier is the Applier of a real HAProxy it runs (see doc.go for the
// duties it fulfils). It is safe for one caller at a time; Apply calls are
// serialised.
type HAProxyApplier struct {
	// Config is the Config the Results were rendered with (SocketPath,
	// MapPath and PathMapPath are read from it).
	Config Config
	Bin    string // "haproxy" if empty
	// ConfigPath is the live haproxy.cfg; MasterSocket and PIDFile default
	// to ConfigPath's directory.
	ConfigPath   string
	MasterSocket string
	PIDFile      string
	Keep         int // previous configs kept (DefaultKeep if 0)
	// Metrics counts reloads and runtime API commands; nil counts nothing.
	Metrics *Metrics

	mu       sync.Mutex
	proc     *Process
	stop     context.CancelFunc
	runtime  *Runtime
	disk     *diskWriter
	diskStop context.CancelFunc
	diskDone chan struct{}
}

// Apply takes HAProxy from prev (what it serves) to next. With plan.Reload
// (or before HAProxy runs), the config and maps are checked and written,
// then HAProxy is started or reloaded: the file's slots carry the
// membership, so nothing else is sent. Otherwise plan.Commands go to the
// runtime API first (latency), then the config and maps are written
// (unchecked: HAProxy just accepted them; not reloaded) so a later reload keeps them; a failed write
// there does not fail Apply (see DiskError). If a command fails, Apply
// falls back to a reload, which repairs whatever the runtime state was.
//
// A candidate that fails `haproxy -c` is not installed: Apply returns the
// error and HAProxy keeps serving prev.
func (a *HAProxyApplier) Apply(ctx context.Context, prev, next *Result, plan Plan) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg := a.Config.withDefaults()
	if a.runtime == nil {
		a.runtime = &Runtime{SocketPath: cfg.SocketPath}
	}
	maps := map[string]string{cfg.MapPath: next.HostMap, cfg.PathMapPath: next.PathMap}
	disk := a.diskLocked()
	if a.proc != nil && !plan.Reload {
		cmdErr := a.exec(ctx, plan.Commands)
		if cmdErr == nil {
			// HAProxy serves next: report success, since resending the
			// commands (add map) would not be idempotent. The file,
			// which only a later reload reads, follows in the
			// background, checked (`haproxy -c` takes seconds at 10,000
			// backends); DiskError says if it could not be written.
			disk.queue(next.Config, maps)
			return nil
		}
		// A command failed: reload from the file, which repairs
		// whatever the runtime state was.
		if werr := disk.writeNow(ctx, next.Config, maps); werr != nil {
			return errors.Join(cmdErr, werr)
		}
		if err := a.reload(ctx); err != nil {
			return errors.Join(cmdErr, err)
		}
		return nil
	}
	if err := disk.writeNow(ctx, next.Config, maps); err != nil {
		a.count(func(m *Metrics) { m.ReloadFailures.Inc() })
		return err
	}
	var err error
	select {
	case <-a.procDone():
		err = a.start(ctx) // not started yet, or it died: start it on the new config
	default:
		err = a.reload(ctx)
	}
	if err != nil {
		return err
	}
	// The new worker serves every slot of the file; draining ones go back
	// to drain at once. Should that fail, the periodic reconcile repairs
	// it: it is no reason to call the reload failed.
	_ = a.exec(ctx, DrainingCommands(next))
	return nil
}

// procDone is closed when no HAProxy runs under the applier.
func (a *HAProxyApplier) procDone() <-chan struct{} {
	if a.proc == nil {
		return closedChan
	}
	return a.proc.Done()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// exec sends cmds through the runtime API, counting them.
func (a *HAProxyApplier) exec(ctx context.Context, cmds []string) error {
	if len(cmds) == 0 {
		return nil
	}
	_, err := a.runtime.Exec(ctx, cmds)
	a.count(func(m *Metrics) {
		m.Commands.Add(float64(len(cmds)))
		if n := failedCommands(err, len(cmds)); n > 0 {
			m.CommandFailures.Add(float64(n))
		}
	})
	return err
}

// failedCommands counts the commands err says failed: the ones whose reply
// is an error, or all n when the socket itself failed.
func failedCommands(err error, n int) int {
	if err == nil {
		return 0
	}
	var ce *CommandError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		k := 0
		for _, e := range j.Unwrap() {
			if errors.As(e, &ce) {
				k++
			}
		}
		if k > 0 {
			return k
		}
	}
	if errors.As(err, &ce) {
		return 1
	}
	return n
}

// reload reloads the master, counting it.
func (a *HAProxyApplier) reload(ctx context.Context) error {
	err := a.proc.Reload(ctx)
	a.count(func(m *Metrics) {
		if err != nil {
			m.ReloadFailures.Inc()
		} else {
			m.Reloads.Inc()
		}
	})
	return err
}

func (a *HAProxyApplier) count(f func(*Metrics)) {
	if a.Metrics != nil {
		f(a.Metrics)
	}
}

func (a *HAProxyApplier) start(ctx context.Context) error {
	dir := filepath.Dir(a.ConfigPath)
	p := &Process{Bin: a.Bin, ConfigPath: a.ConfigPath, MasterSocket: a.MasterSocket, PIDFile: a.PIDFile}
	if p.MasterSocket == "" {
		p.MasterSocket = filepath.Join(dir, "master.sock")
	}
	if p.PIDFile == "" {
		p.PIDFile = filepath.Join(dir, "haproxy.pid")
	}
	// The process outlives this Apply's ctx: Close ends it.
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	if err := p.Start(pctx); err != nil {
		stop()
		return fmt.Errorf("start haproxy: %w", err)
	}
	a.proc, a.stop = p, stop
	a.count(func(m *Metrics) { m.Reloads.Inc() })
	return nil
}

// Process is the running HAProxy, nil before the first Apply.
func (a *HAProxyApplier) Process() *Process {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc
}

// Runtime is the runtime API client (nil before the first Apply).
func (a *HAProxyApplier) Runtime() *Runtime {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runtime
}

// backgroundWriteGap is the least time between two background writes of
// the live file (see diskWriter).
const backgroundWriteGap = time.Second

// diskLocked is the background writer of the live file, started on first
// use and stopped by Close. a.mu held.
func (a *HAProxyApplier) diskLocked() *diskWriter {
	if a.disk == nil {
		a.disk = newDiskWriter(func(ctx context.Context, cfg string, maps map[string]string) error {
			return writeConfig(ctx, a.Bin, a.ConfigPath, cfg, maps, a.Keep, backgroundNice)
		})
		a.disk.gap = backgroundWriteGap
		ctx, stop := context.WithCancel(context.Background())
		a.diskStop, a.diskDone = stop, make(chan struct{})
		go func() { defer close(a.diskDone); a.disk.run(ctx) }()
	}
	return a.disk
}

// DiskError is why the newest runtime-only change's config could not be
// written to disk (nil when it was, or is still on its way): HAProxy
// serves it, but a reload would not.
func (a *HAProxyApplier) DiskError() error {
	a.mu.Lock()
	disk := a.disk
	a.mu.Unlock()
	if disk == nil {
		return nil
	}
	return disk.lastErr()
}

// WaitWritten waits until the config of every Apply so far is on disk (or
// failed to be) and returns DiskError.
func (a *HAProxyApplier) WaitWritten() error {
	a.mu.Lock()
	disk := a.disk
	a.mu.Unlock()
	if disk == nil {
		return nil
	}
	return disk.wait()
}

// Close writes what is queued for disk, soft-stops HAProxy and waits for
// it to exit.
func (a *HAProxyApplier) Close() error {
	_ = a.WaitWritten()
	a.mu.Lock()
	p, stop := a.proc, a.stop
	a.proc, a.stop = nil, nil
	if a.diskStop != nil {
		a.diskStop()
		<-a.diskDone
		a.disk, a.diskStop = nil, nil
	}
	a.mu.Unlock()
	if p == nil {
		return nil
	}
	stop()
	<-p.Done()
	os.Remove(p.MasterSocket)
	return nil
}

var _ Applier = (*HAProxyApplier)(nil)
