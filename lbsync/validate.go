package lbsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"

	parser "github.com/haproxytech/config-parser/v5"
	"github.com/haproxytech/config-parser/v5/options"
	"github.com/haproxytech/config-parser/v5/types"
)

var checkedSections = []parser.Section{parser.Global, parser.Defaults, parser.Frontends, parser.Backends, parser.Listen}

// Validate parses cfgText with haproxytech's config-parser and reports
// every line it does not recognise, with its section. It is the fast, pure
// check; CheckWithHAProxy is the authoritative one.
func Validate(cfgText string) error {
	p, err := parser.New(options.String(cfgText), options.UseListenSectionParsers)
	if err != nil {
		return fmt.Errorf("config-parser: %w", err)
	}
	var errs []error
	for _, sec := range checkedSections {
		names, err := p.SectionsGet(sec)
		if err != nil {
			continue
		}
		for _, name := range names {
			d, err := p.Get(sec, name, "")
			if err != nil {
				continue
			}
			lines, _ := d.([]types.UnProcessed)
			for _, l := range lines {
				errs = append(errs, fmt.Errorf("%s %s: unknown or invalid line %q", sec, name, strings.TrimSpace(l.Value)))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckWithHAProxy runs `bin -c -f path` (bin defaults to "haproxy") and
// returns a *CheckError with its output when the check fails.
func CheckWithHAProxy(ctx context.Context, bin, path string) error {
	return checkWithHAProxy(ctx, bin, path, 0)
}

// backgroundNice is the niceness of checks nobody waits for: a check of a
// large config takes a core for a tenth of a second or more, and the
// HAProxy workers, the sidecar and the tasks on the node come first.
const backgroundNice = 19

// checkWithHAProxy is CheckWithHAProxy with the check's process at the
// given niceness (0: as this process).
func checkWithHAProxy(ctx context.Context, bin, path string, nice int) error {
	if bin == "" {
		bin = "haproxy"
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-c", "-f", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err == nil {
		if nice != 0 {
			// Best effort: a check at normal priority is still a check.
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, nice)
		}
		err = cmd.Wait()
	}
	if err != nil {
		return &CheckError{Bin: bin, Path: path, Output: strings.TrimSpace(out.String()), Err: err}
	}
	return nil
}

// CheckError is a config `haproxy -c` rejected: Output holds its ALERT
// lines (ParseAlerts), which point into the file at Path.
type CheckError struct {
	Bin, Path, Output string
	Err               error
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("%s -c -f %s: %v: %s", e.Bin, e.Path, e.Err, e.Output)
}

func (e *CheckError) Unwrap() error { return e.Err }
