package master

import (
	"slices"

	"github.com/atollhq/atoll/events"
)

// taskAddressesLocked records the addresses a task's status update gives
// it (a bridged container's own, sent with TASK_RUNNING) in place of the
// agent's, which the task had from its placement: Marathon's task
// ipAddresses and Mesos's network_infos are the container's. An update
// without addresses changes nothing. changes are the update's other
// changes; the last carries the task as it will be.
func taskAddressesLocked(t events.Task, ips []events.IPAddress, changes []events.Change) []events.Change {
	if len(ips) == 0 {
		return changes
	}
	if len(changes) > 0 {
		if c := changes[len(changes)-1]; c.Task != nil {
			t = *c.Task
		}
	}
	if t.State.Terminal() || slices.Equal(t.IPAddresses, ips) {
		return changes
	}
	t.IPAddresses = slices.Clone(ips)
	if len(changes) > 0 && changes[len(changes)-1].Task != nil {
		changes[len(changes)-1] = events.PutTask(t)
		return changes
	}
	return append(changes, events.PutTask(t))
}
