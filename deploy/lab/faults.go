package main

// The paper partitioned one Mesos master node with two iptables rules on
// that node; the lab does the same inside the master node's namespace,
// against each other master node (ZooKeeper and master both live there).

// partitionRules are the iptables rule specs that cut region r's master
// node from the other master nodes.
func partitionRules(r Region) [][]string {
	var rules [][]string
	for _, o := range regions {
		if o == r {
			continue
		}
		ip := host(o, "m").IP()
		rules = append(rules,
			[]string{"INPUT", "-s", ip, "-j", "DROP"},
			[]string{"OUTPUT", "-d", ip, "-j", "DROP"})
	}
	return rules
}

func iptablesIn(r Region, op string, rule []string) error {
	args := append([]string{"netns", "exec", host(r, "m").NS(), "iptables", op}, rule...)
	return run("ip", args...)
}

// partitionMaster adds the DROP rules (once: a second call adds nothing).
func partitionMaster(r Region) error {
	for _, rule := range partitionRules(r) {
		if iptablesIn(r, "-C", rule) == nil {
			continue
		}
		if err := iptablesIn(r, "-A", rule); err != nil {
			return err
		}
	}
	return nil
}

// unpartitionMaster deletes the DROP rules, every copy of them.
func unpartitionMaster(r Region) error {
	for _, rule := range partitionRules(r) {
		for iptablesIn(r, "-C", rule) == nil {
			if err := iptablesIn(r, "-D", rule); err != nil {
				return err
			}
		}
	}
	return nil
}

// healAll undoes every network fault: every region's link up, every
// partition removed.
func healAll() error {
	var first error
	for _, r := range regions {
		for _, err := range []error{setRegionLink(r, true), unpartitionMaster(r)} {
			if err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
