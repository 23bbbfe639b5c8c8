package master

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// ZKConfig puts a master behind a ZooKeeper election, with its state in
// ZooKeeper (see ZKStore).
type ZKConfig struct {
	Servers []string
	// Path is the cluster's znode, e.g. "/atoll": candidates are its
	// json.info_ children, as Mesos's; the state lives below it.
	Path string
	// SessionTimeout bounds how long a leader that ZooKeeper no longer
	// hears from keeps its place; the server may clamp it (2 to 20 ticks).
	SessionTimeout time.Duration
	// Auth is "user:password" for digest ACLs: the state is then readable
	// by that user only, the candidates by anyone (Mesos-DNS reads them).
	// Empty means open znodes.
	Auth string
}

// DefaultZKSessionTimeout is ZKConfig.SessionTimeout's default.
const DefaultZKSessionTimeout = 10 * time.Second

// ParseZKURL reads a Mesos-style ZooKeeper URL:
// zk://[user:password@]host1:port1,host2:port2/path.
func ParseZKURL(raw string) (ZKConfig, error) {
	rest, ok := strings.CutPrefix(raw, "zk://")
	if !ok {
		return ZKConfig{}, fmt.Errorf("zk url %q: want zk://host:port[,host:port...]/path", raw)
	}
	hosts, path, _ := strings.Cut(rest, "/")
	var z ZKConfig
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		z.Auth, hosts = hosts[:at], hosts[at+1:]
		if u, p, ok := strings.Cut(z.Auth, ":"); !ok || u == "" || p == "" {
			return ZKConfig{}, fmt.Errorf("zk url: credentials must be user:password")
		}
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if h = strings.TrimSpace(h); h == "" {
			return ZKConfig{}, fmt.Errorf("zk url %q: empty host", redactZKURL(raw))
		}
		if !strings.Contains(h, ":") {
			h += ":2181"
		}
		z.Servers = append(z.Servers, h)
	}
	path = strings.Trim(path, "/")
	if path == "" {
		return ZKConfig{}, fmt.Errorf("zk url %q: needs a path, e.g. zk://127.0.0.1:2181/atoll", redactZKURL(raw))
	}
	z.Path = "/" + path
	z.SessionTimeout = DefaultZKSessionTimeout
	return z, nil
}

// redactZKURL hides the password of a ZooKeeper URL, for logs and errors.
func redactZKURL(raw string) string {
	rest, ok := strings.CutPrefix(raw, "zk://")
	if !ok {
		return raw
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		user, _, _ := strings.Cut(hosts[:at], ":")
		hosts = user + ":***@" + hosts[at+1:]
	}
	return "zk://" + hosts + "/" + path
}

// acls are the ACLs of the election's znodes and of the state's.
func (z ZKConfig) acls() (election, state []zk.ACL) {
	if z.Auth == "" {
		open := zk.WorldACL(zk.PermAll)
		return open, open
	}
	user, pass, _ := strings.Cut(z.Auth, ":")
	own := zk.DigestACL(zk.PermAll, user, pass)
	return append(slices.Clone(own), zk.WorldACL(zk.PermRead)...), own
}

// String is the URL without credentials.
func (z ZKConfig) String() string {
	return "zk://" + strings.Join(z.Servers, ",") + z.Path
}
