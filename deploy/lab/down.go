package main

import (
	"fmt"
	"time"
)

// down stops every lab process and deletes every lab namespace (and with
// them every link). It works on a half-built or already removed lab, so
// it is safe to run twice and is the first step of up.
func (l *Lab) down() error {
	// Processes by pid file first, gently and in reverse start order, so
	// ZooKeeper and HAProxy end cleanly and the logs end without the
	// noise of a master losing ZooKeeper; then whatever is left in the
	// namespaces (tasks, haproxy workers, a process whose pid file is gone).
	ps := procs()
	for i := len(ps) - 1; i >= 0; i-- {
		p := ps[i]
		if err := l.stop(p, false, 3*time.Second); err != nil {
			fmt.Println("lab down:", err)
		}
	}
	ns, err := labNamespaces()
	if err != nil {
		return err
	}
	for _, n := range ns {
		if err := killNamespace(n); err != nil {
			return err
		}
	}
	if err := deleteNamespaces(); err != nil {
		return err
	}
	fmt.Printf("lab down: %d namespaces removed\n", len(ns))
	return nil
}
