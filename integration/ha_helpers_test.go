package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/zktest"
)

// haOptions shape an HA cluster: masters elected through a real ZooKeeper
// ensemble, agents as in startCluster.
type haOptions struct {
	masters, agents int
	session         time.Duration // --zk-session-timeout
	agentTimeout    time.Duration
}

// startHACluster starts a 3-node ZooKeeper ensemble, NATS (in this
// process), o.masters `atoll master --zk` processes and o.agents agents,
// and waits until every master names the same leader. c.api is the
// leader's.
func startHACluster(t *testing.T, o haOptions) (*cluster, *zktest.Ensemble) {
	t.Helper()
	if o.agentTimeout == 0 {
		o.agentTimeout = 15 * time.Second
	}
	zk := zktest.Start(t, 3)
	dir := passableTempDir(t)
	c := &cluster{t: t, dir: dir, nats: startNATS(t, dir), agentTimeout: o.agentTimeout}
	t.Cleanup(c.stop)
	zkURL := "zk://" + zk.Connect + "/atoll-" + strings.ToLower(t.Name())
	for i := 1; i <= o.masters; i++ {
		addr := freeAddr(t)
		name := fmt.Sprintf("master-%d", i)
		c.masters = append(c.masters, c.start(name, append(append([]string{"master",
			"--zk", zkURL, "--zk-session-timeout", o.session.String()}, c.nats.args(natsauth.RoleMaster, name)...),
			"--http", addr,
			"--data-dir", filepath.Join(c.dir, name),
			"--agent-timeout", o.agentTimeout.String(), "--hostname", name)...))
		c.masterAddrs = append(c.masterAddrs, addr)
	}
	leader := c.waitLeader(30*time.Second, -1)
	c.api = "http://" + c.masterAddrs[leader]
	for i := 1; i <= o.agents; i++ {
		c.agents = append(c.agents, nil)
		c.startAgent(i)
	}
	c.waitFor(20*time.Second, fmt.Sprintf("%d active agents", o.agents), func() (bool, string) {
		n := c.activeAgents()
		return n == o.agents, fmt.Sprintf("%d active", n)
	})
	return c, zk
}

// masterView is what one master says about leadership.
type masterView struct {
	elected bool
	leader  string // "ip:port" from /v2/leader, "" without one
	err     error
}

func (c *cluster) viewOf(i int) masterView {
	client := &http.Client{Timeout: time.Second}
	base := "http://" + c.masterAddrs[i]
	var v masterView
	resp, err := client.Get(base + "/v2/info")
	if err != nil {
		return masterView{err: err}
	}
	var info struct {
		Elected bool `json:"elected"`
	}
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil {
		return masterView{err: fmt.Errorf("/v2/info: %w", err)}
	}
	v.elected = info.Elected
	resp, err = client.Get(base + "/v2/leader")
	if err != nil {
		return masterView{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		var l struct {
			Leader string `json:"leader"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			return masterView{err: fmt.Errorf("/v2/leader: %w", err)}
		}
		v.leader = l.Leader
	}
	return v
}

// waitLeader waits until exactly one master other than skip (-1: none)
// says it is elected and every master other than skip names it, and
// returns its index.
func (c *cluster) waitLeader(timeout time.Duration, skip int) int {
	c.t.Helper()
	leader := -1
	c.waitFor(timeout, "one leader all masters agree on", func() (bool, string) {
		leader = -1
		var states []string
		agreed := true
		for i := range c.masterAddrs {
			if i == skip {
				continue
			}
			v := c.viewOf(i)
			states = append(states, fmt.Sprintf("master-%d elected=%v leader=%q err=%v", i+1, v.elected, v.leader, v.err))
			if v.err != nil {
				agreed = false
				continue
			}
			if v.elected {
				if leader >= 0 {
					agreed = false // two say they lead
				}
				leader = i
			}
		}
		if leader < 0 {
			return false, strings.Join(states, "; ")
		}
		for i := range c.masterAddrs {
			if i != skip && c.viewOf(i).leader != c.masterAddrs[leader] {
				agreed = false
			}
		}
		return agreed, strings.Join(states, "; ")
	})
	return leader
}
