package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// exportZone fetches the sidecar's records as a zone file, keeping only
// the names under the domain (knotd serves one zone; PTR records live in
// reverse zones the benchmark does not query).
func exportZone(httpAddr, dir string) (string, int, error) {
	resp, err := http.Get("http://" + httpAddr + "/v1/axfr?format=zone")
	if err != nil {
		return "", 0, fmt.Errorf("export zone: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return "", 0, fmt.Errorf("export zone: %s: %s", resp.Status, body)
	}
	path := filepath.Join(dir, "mesos.zone")
	f, err := os.Create(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "$") {
			fmt.Fprintln(f, line)
			continue
		}
		if !strings.HasSuffix(strings.ToLower(fields[0]), "mesos.") {
			continue
		}
		fmt.Fprintln(f, line)
		n++
	}
	return path, n, sc.Err()
}

// startKnot runs knotd with one UDP worker on core, serving the zone file.
func startKnot(core, dir, zone string, port int) (*exec.Cmd, error) {
	conf := fmt.Sprintf(`server:
    listen: 127.0.0.1@%d
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    rundir: %[2]s
database:
    storage: %[2]s
log:
  - target: stderr
    any: error
zone:
  - domain: mesos
    file: %[3]s
    storage: %[2]s
`, port, dir, zone)
	path := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", "-c", core, "knotd", "-c", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start knotd: %w", err)
	}
	return cmd, nil
}
