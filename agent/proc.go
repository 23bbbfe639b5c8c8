package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procInfo is what /proc/<pid>/stat tells about a process.
type procInfo struct {
	State     byte   // R, S, D, Z, X, ...
	StartTime uint64 // field 22: clock ticks after boot
}

// errNoProcess says the pid does not exist.
var errNoProcess = errors.New("no such process")

// readProc reads /proc/<pid>/stat.
func readProc(pid int) (procInfo, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return procInfo{}, errNoProcess
		}
		return procInfo{}, err
	}
	return parseProcStat(data)
}

// parseProcStat parses "pid (comm) state ppid ...". comm may hold spaces
// and parentheses, so fields are counted from the last ')'.
func parseProcStat(data []byte) (procInfo, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procInfo{}, fmt.Errorf("bad /proc stat %q", data)
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procInfo{}, fmt.Errorf("bad /proc stat %q", data)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procInfo{}, fmt.Errorf("bad start time in /proc stat: %w", err)
	}
	return procInfo{State: fields[0][0], StartTime: start}, nil
}

// alive reports whether pid is the process that started at startTime and
// has not exited (a zombie has exited).
func alive(pid int, startTime uint64) bool {
	if pid <= 0 {
		return false
	}
	p, err := readProc(pid)
	return err == nil && p.StartTime == startTime && p.State != 'Z' && p.State != 'X'
}

// bootID identifies the current boot: start times only mean something
// within one boot.
func bootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
