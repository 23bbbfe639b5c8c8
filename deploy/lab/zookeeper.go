package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// zkServerScript is Debian's ZooKeeper launcher; start-foreground execs
// java, so the pid we record is the server's.
const zkServerScript = "/usr/share/zookeeper/bin/zkServer.sh"

// writeZooKeeperConfig writes region r's myid and zoo.cfg into dir and
// returns the config's path. tickTime 500 ms keeps sessions short (2-20
// ticks: 1-10 s), so a dead master's session ends in seconds.
func writeZooKeeperConfig(dir string, r Region) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "tickTime=500\ninitLimit=20\nsyncLimit=5\ndataDir=%s\n", dir)
	fmt.Fprintf(&b, "clientPort=%d\nclientPortAddress=%s\n", zkClientPort, host(r, "m").IP())
	b.WriteString("admin.enableServer=false\n4lw.commands.whitelist=ruok,stat,mntr,srvr\n")
	for _, o := range regions {
		fmt.Fprintf(&b, "server.%d=%s:2888:3888\n", o.N, host(o, "m").IP())
	}
	if err := os.WriteFile(filepath.Join(dir, "myid"), []byte(fmt.Sprintf("%d\n", r.N)), 0o644); err != nil {
		return "", fmt.Errorf("zookeeper myid: %w", err)
	}
	cfg := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("zookeeper config: %w", err)
	}
	return cfg, nil
}
