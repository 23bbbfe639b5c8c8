package lbsync

import "strconv"

func itoa(i int) string { return strconv.Itoa(i) }

// target is a task that should sit in a backend.
type target struct {
	taskID   string
	addr     string
	port     int
	draining bool // TASK_KILLING: keeps its slot, takes no new one
}

// assignSlots places targets (sorted by task id) into the backend's slots.
// A task that held a slot in prev keeps it; new tasks take the lowest free
// slots. The slot count is prev's, or, when the tasks do not fit, twice
// their number rounded up to step: backends never shrink by themselves, so
// scaling down and up again needs no reload.
func assignSlots(name string, prev *Backend, targets []target, step int) []Slot {
	held := map[string]bool{}
	if prev != nil {
		for _, ps := range prev.Slots {
			if ps.TaskID != "" {
				held[ps.TaskID] = true
			}
		}
	}
	// Every live target takes a slot, and so does every draining one
	// that holds one already (a restart drains the old tasks while the
	// new ones come in).
	need := 0
	for _, t := range targets {
		if !t.draining || held[t.taskID] {
			need++
		}
	}
	n := 0
	if prev != nil {
		n = len(prev.Slots)
	}
	if need > n || n == 0 {
		// Grow with room for a whole rolling restart: the old tasks keep
		// their slots while draining, so up to twice the tasks are in
		// the backend at once, and a reload in the middle of a deploy
		// would hold the new tasks back while the old ones go.
		n = max((2*need+step-1)/step*step, step)
	}
	slots := make([]Slot, n)
	placed := make([]bool, len(targets))
	if prev != nil && len(prev.Slots) > 0 {
		byID := make(map[string]int, len(targets))
		for i, t := range targets {
			byID[t.taskID] = i
		}
		for i, ps := range prev.Slots {
			if ps.TaskID == "" {
				continue
			}
			if j, ok := byID[ps.TaskID]; ok {
				t := targets[j]
				slots[i] = Slot{TaskID: t.taskID, Addr: t.addr, Port: t.port, Draining: t.draining}
				placed[j] = true
			}
		}
	}
	next := 0
	for j, t := range targets {
		if placed[j] || t.draining {
			continue
		}
		for slots[next].TaskID != "" {
			next++
		}
		slots[next] = Slot{TaskID: t.taskID, Addr: t.addr, Port: t.port}
	}
	prefix := name + "-"
	for i := range slots {
		slots[i].Name = prefix + strconv.Itoa(i+1)
	}
	return slots
}
