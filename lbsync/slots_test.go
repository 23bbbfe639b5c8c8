package lbsync

import (
	"fmt"
	"testing"
)

// TestAssignSlotsRestartOverflow: a restart drains every old task, which
// keeps its slot, while as many new ones come in: the backend grows
// instead of running out of slots.
func TestAssignSlotsRestartOverflow(t *testing.T) {
	var prevTargets, targets []target
	for i := 0; i < 8; i++ {
		old := target{taskID: fmt.Sprintf("old%d", i), addr: "127.0.0.1", port: 31000 + i}
		prevTargets = append(prevTargets, old)
		old.draining = true
		targets = append(targets, old)
	}
	for i := 0; i < 5; i++ {
		targets = append(targets, target{taskID: fmt.Sprintf("new%d", i), addr: "127.0.0.1", port: 32000 + i})
	}
	prev := &Backend{Name: "be", Slots: assignSlots("be", nil, prevTargets, 8)}
	slots := assignSlots("be", prev, targets, 8)
	if len(slots) != 16 {
		t.Fatalf("%d slots, want 16", len(slots))
	}
	for i := 0; i < 8; i++ {
		if slots[i].TaskID != prev.Slots[i].TaskID || !slots[i].Draining {
			t.Errorf("slot %d: %+v, want %s draining in place", i, slots[i], prev.Slots[i].TaskID)
		}
	}
	for i := 8; i < 13; i++ {
		if slots[i].TaskID == "" || slots[i].Draining {
			t.Errorf("slot %d: %+v, want a new task", i, slots[i])
		}
	}
}
