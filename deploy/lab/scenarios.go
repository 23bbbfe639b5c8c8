package main

import (
	"fmt"
	"time"
)

// A scenario injects one failure, measures the cluster's reaction through
// the public APIs, and undoes the failure. The harness (chaos.go) settles
// the cluster before and after and judges the result.
type scenario struct {
	name string
	// needsZK: the scenario is about the election and needs --zk masters.
	needsZK bool
	run     func(l *Lab, a *api, tr *traffic, before view, r *result) error
}

func scenarios() []scenario {
	return []scenario{
		{"agent dies", false, agentDies},
		{"leading master dies", true, leaderDies},
		{"region goes dark", false, regionDark},
		{"master partitioned + majority restart", true, masterPartitioned},
	}
}

// measure polls probe every 200 ms from t0 until it reports recovery or
// timeout passes, recording when it first reported detection and
// recovery (detection is implied by recovery).
func measure(t0 time.Time, timeout time.Duration, r *result, probe func() (detected, recovered bool)) {
	for time.Since(t0) < timeout {
		det, rec := probe()
		if (det || rec) && r.detect < 0 {
			r.detect = time.Since(t0)
		}
		if rec {
			r.recover = time.Since(t0)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const recoverTimeout = 90 * time.Second

// agentDies: the host of an agent that runs a task loses power (agent and
// tasks killed at once); its tasks must be replaced on other agents.
func agentDies(l *Lab, a *api, tr *traffic, before view, r *result) error {
	var victim Host
	for _, t := range before.running(chaosAppID) {
		if h, err := hostByName(before.hostOf(t)); err == nil && h.Region.N != clientHost.Region.N {
			victim = h
			break
		}
	}
	if victim.Short == "" {
		return fmt.Errorf("no task on an agent outside region 1")
	}
	victimID := agentID(before, victim)
	r.notef("crashed %s (agent + its tasks)", victim.Name())
	tr.setDead(victim.IP())
	defer tr.setDead()
	t0 := time.Now()
	if err := l.crashHost(victim); err != nil {
		return err
	}
	app := before.apps[chaosAppID]
	measure(t0, recoverTimeout, r, func() (bool, bool) {
		v, err := observe(a, l.masterRegions())
		if err != nil {
			return false, false
		}
		det := !v.agents[victimID].Active
		for _, t := range v.tasks {
			if t.SlaveID == victimID && t.State != "TASK_RUNNING" {
				det = true
			}
		}
		onVictim := 0
		for _, t := range v.running(chaosAppID) {
			if t.SlaveID == victimID {
				onVictim++
			}
		}
		return det, len(v.running(chaosAppID)) == app.Instances && onVictim == 0
	})
	r.keep = func(t Task) bool { return t.SlaveID != victimID }
	return l.bootHost(victim)
}

func agentID(v view, h Host) string {
	for id, ag := range v.agents {
		if ag.Hostname == h.Name() {
			return id
		}
	}
	return ""
}

// leaderDies: SIGKILL to the leading master; the others must elect a
// leader that serves the same state, and no task may be touched.
func leaderDies(l *Lab, a *api, _ *traffic, before view, r *result) error {
	lr, ok := leaderRegion(before.leader)
	if !ok {
		return fmt.Errorf("leader %q is no lab master", before.leader)
	}
	victim := procIn(lr, "master")
	r.notef("killed %s (leader %s)", victim.Name, before.leader)
	survivors := others(l.masterRegions(), lr)
	t0 := time.Now()
	if err := l.stop(victim, true, time.Second); err != nil {
		return err
	}
	measure(t0, recoverTimeout, r, func() (bool, bool) { return newLeaderServes(a, survivors, before.leader) })
	r.keep = func(Task) bool { return true }
	return l.start(victim)
}

// newLeaderServes: detected when a survivor stops naming old as leader;
// recovered when the survivors agree on another leader whose API shows
// the app fully running.
func newLeaderServes(a *api, survivors []Region, old string) (bool, bool) {
	det := false
	for _, s := range survivors {
		if ld, err := a.leaderOf(s); err != nil || ld != old {
			det = true
		}
	}
	ld, err := currentLeader(a, survivors)
	if err != nil || ld == old {
		return det, false
	}
	v, err := observe(a, survivors)
	if err != nil {
		return det, false
	}
	app := v.apps[chaosAppID]
	return det, len(v.running(chaosAppID)) == app.Instances
}

// regionDark: the router's link to one region goes down (the leader's
// region when that is not the client's). The rest must keep a leader and
// replace the region's tasks; after the link returns, no duplicates.
func regionDark(l *Lab, a *api, tr *traffic, before view, r *result) error {
	dark := regions[2]
	if lr, ok := leaderRegion(before.leader); ok && lr != clientHost.Region && l.MasterZK {
		dark = lr
	}
	r.notef("cut %s (r%d); leader was %s", dark.Name, dark.N, before.leader)
	rest := others(l.masterRegions(), dark)
	darkAgents := map[string]bool{}
	for id, ag := range before.agents {
		if h, err := hostByName(ag.Hostname); err == nil && h.Region == dark {
			darkAgents[id] = true
		}
	}
	app := before.apps[chaosAppID]
	tr.setDead(host(dark, "a1").IP(), host(dark, "a2").IP())
	defer tr.setDead()
	t0 := time.Now()
	if err := setRegionLink(dark, false); err != nil {
		return err
	}
	measure(t0, recoverTimeout, r, func() (bool, bool) {
		ld, err := currentLeader(a, rest)
		det := err != nil || ld != before.leader
		if err != nil {
			return det, false
		}
		v, err := observe(a, rest)
		if err != nil {
			return det, false
		}
		good := 0
		for _, t := range v.tasks {
			if darkAgents[t.SlaveID] && t.State != "TASK_RUNNING" {
				det = true
			}
		}
		for id := range darkAgents {
			if !v.agents[id].Active {
				det = true
			}
		}
		for _, t := range v.running(chaosAppID) {
			if !darkAgents[t.SlaveID] {
				good++
			}
		}
		return det, good == app.Instances
	})
	r.keep = func(t Task) bool { return !darkAgents[t.SlaveID] }
	return setRegionLink(dark, true)
}

// masterPartitioned: the paper's iptables DROP between the leading master
// node (ZooKeeper + master) and the other master nodes. The majority must
// elect a leader; then, beyond the paper, ZooKeeper and the master are
// restarted on both majority nodes while the partition holds, and the
// majority must elect a leader and serve again. The cut-off master must
// not go on claiming to lead.
func masterPartitioned(l *Lab, a *api, _ *traffic, before view, r *result) error {
	pr, ok := leaderRegion(before.leader)
	if !ok {
		return fmt.Errorf("leader %q is no lab master", before.leader)
	}
	majority := others(regions, pr)
	r.notef("partitioned master node r%d (leader) from r%d and r%d", pr.N, majority[0].N, majority[1].N)
	t0 := time.Now()
	if err := partitionMaster(pr); err != nil {
		return err
	}
	// The cut-off master may go on naming itself leader only until its
	// ZooKeeper session can have expired.
	var claimed time.Duration
	cutOffClaims := func() {
		if ld, err := a.leaderOf(pr); err == nil && ld == before.leader {
			claimed = time.Since(t0)
		}
	}
	defer func() {
		if err := unpartitionMaster(pr); err != nil {
			r.failf("undo partition: %v", err)
		}
	}()
	// Phase 1: the majority notices and elects.
	measure(t0, recoverTimeout, r, func() (bool, bool) {
		cutOffClaims()
		return newLeaderServes(a, majority, before.leader)
	})
	if r.recover < 0 {
		return nil
	}
	firstElection := r.recover
	r.recover = -1
	// Phase 2: restart ZooKeeper and master on the majority nodes.
	var restart []Proc
	for _, m := range majority {
		restart = append(restart, procIn(m, "master"), procIn(m, "zk"))
	}
	for _, p := range restart {
		if err := l.stop(p, false, 5*time.Second); err != nil {
			return err
		}
	}
	for i := len(restart) - 1; i >= 0; i-- { // ZooKeeper first
		if err := l.start(restart[i]); err != nil {
			return err
		}
	}
	t1 := time.Now()
	var phase2 result
	phase2.detect, phase2.recover = -1, -1
	measure(t1, recoverTimeout, &phase2, func() (bool, bool) {
		cutOffClaims()
		_, rec := newLeaderServes(a, majority, before.leader)
		return false, rec
	})
	r.recover = phase2.recover
	r.notef("first election %.1fs after the partition; recovery measured from the majority restart", firstElection.Seconds())
	cutOffClaims()
	r.notef("cut-off r%d named itself leader until %.1fs after the partition", pr.N, claimed.Seconds())
	if limit := l.ZKSessionTimeout + 3*time.Second; claimed > limit {
		r.failf("split brain: partitioned r%d named itself leader %.1fs after the partition (session timeout %s)", pr.N, claimed.Seconds(), l.ZKSessionTimeout)
	}
	r.keep = func(Task) bool { return true }
	return nil
}
