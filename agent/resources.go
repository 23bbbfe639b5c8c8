package agent

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/atollhq/atoll/events"
)

// defaultPorts is the host port range an agent offers unless told otherwise
// (Mesos's default).
func defaultPorts() []events.PortRange { return []events.PortRange{{Begin: 31000, End: 32000}} }

// DetectResources measures this node: cpus (runtime.NumCPU), mem (MemTotal
// from /proc/meminfo, MB), disk (size of the file system holding workDir,
// MB) and the default port range 31000-32000.
func DetectResources(workDir string) (events.Resources, error) {
	mem, err := memTotalMB()
	if err != nil {
		return events.Resources{}, err
	}
	disk, err := diskMB(workDir)
	if err != nil {
		return events.Resources{}, err
	}
	return events.Resources{
		Cpus:  float64(runtime.NumCPU()),
		Mem:   mem,
		Disk:  disk,
		Ports: defaultPorts(),
	}, nil
}

// fillResources detects the zero fields of r.
func fillResources(r *events.Resources, workDir string) error {
	if r.Cpus < 0 || r.Mem < 0 || r.Disk < 0 {
		return fmt.Errorf("negative resources: cpus %g, mem %g, disk %g", r.Cpus, r.Mem, r.Disk)
	}
	if err := checkPortRanges(r.Ports); err != nil {
		return err
	}
	if r.Cpus == 0 {
		r.Cpus = float64(runtime.NumCPU())
	}
	if r.Mem == 0 {
		mem, err := memTotalMB()
		if err != nil {
			return err
		}
		r.Mem = mem
	}
	if r.Disk == 0 {
		disk, err := diskMB(workDir)
		if err != nil {
			return err
		}
		r.Disk = disk
	}
	if len(r.Ports) == 0 {
		r.Ports = defaultPorts()
	}
	return nil
}

func memTotalMB() (float64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("detect memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// MemTotal:       16318480 kB
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("detect memory: bad MemTotal %q", fields[1])
			}
			return float64(kb / 1024), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("detect memory: %w", err)
	}
	return 0, fmt.Errorf("detect memory: no MemTotal in /proc/meminfo")
}

func diskMB(dir string) (float64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("detect disk of %s: %w", dir, err)
	}
	return float64(st.Blocks * uint64(st.Bsize) / (1 << 20)), nil
}

// ParseAttributes parses Mesos agent attributes: "key:value" pairs
// separated by ';' (or newlines), for example "region:oslo;zone:a". The
// value is everything after the first ':'. Spaces around keys and values
// are trimmed and empty pairs (a trailing ';') are skipped. Keys must be
// unique and made of letters, digits, '_', '-', '.' and '/'; values must not
// be empty. An empty string gives an empty map.
func ParseAttributes(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		key, value, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("attribute %q: want key:value", pair)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if key == "" {
			return nil, fmt.Errorf("attribute %q: empty key", pair)
		}
		if i := strings.IndexFunc(key, func(r rune) bool { return !attrKeyRune(r) }); i >= 0 {
			return nil, fmt.Errorf("attribute %q: character %q not allowed in key", pair, key[i])
		}
		if value == "" {
			return nil, fmt.Errorf("attribute %q: empty value", pair)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("attribute %q given twice", key)
		}
		out[key] = value
	}
	return out, nil
}

func attrKeyRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '_' || r == '-' || r == '.' || r == '/'
}

// ParsePortRanges parses host port ranges such as "31000-32000,33000-33100".
// A single port ("8080") is a range of one; Mesos's brackets
// ("[31000-32000, 33000-33100]") are accepted. Ports are 1-65535, a range
// must not end before it begins, and ranges must not overlap.
func ParsePortRanges(s string) ([]events.PortRange, error) {
	body := strings.TrimSpace(s)
	if strings.HasPrefix(body, "[") && strings.HasSuffix(body, "]") {
		body = strings.TrimSpace(body[1 : len(body)-1])
	}
	if body == "" {
		return nil, fmt.Errorf("port ranges %q: empty", s)
	}
	var out []events.PortRange
	for _, part := range strings.Split(body, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("port ranges %q: empty range", s)
		}
		lo, hi, isRange := strings.Cut(part, "-")
		begin, err := parsePort(lo)
		if err != nil {
			return nil, fmt.Errorf("port range %q: %w", part, err)
		}
		end := begin
		if isRange {
			if end, err = parsePort(hi); err != nil {
				return nil, fmt.Errorf("port range %q: %w", part, err)
			}
		}
		if end < begin {
			return nil, fmt.Errorf("port range %q: ends before it begins", part)
		}
		out = append(out, events.PortRange{Begin: begin, End: end})
	}
	if err := checkPortRanges(out); err != nil {
		return nil, err
	}
	return out, nil
}

func parsePort(s string) (int, error) {
	s = strings.TrimSpace(s)
	p, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d out of range 1-65535", p)
	}
	return p, nil
}

// checkPortRanges rejects invalid or overlapping ranges.
func checkPortRanges(rs []events.PortRange) error {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b events.PortRange) int { return a.Begin - b.Begin })
	for i, r := range sorted {
		if r.Begin < 1 || r.End > 65535 || r.End < r.Begin {
			return fmt.Errorf("invalid port range %d-%d", r.Begin, r.End)
		}
		if i > 0 && r.Begin <= sorted[i-1].End {
			return fmt.Errorf("port ranges %d-%d and %d-%d overlap",
				sorted[i-1].Begin, sorted[i-1].End, r.Begin, r.End)
		}
	}
	return nil
}
