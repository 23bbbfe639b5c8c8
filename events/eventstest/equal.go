package eventstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/atollhq/atoll/events"
)

// Equal returns nil if the two states are the same, or an error that names
// the first difference, such as
//
//	tasks["web.1"].state: "TASK_RUNNING" != "TASK_STAGING"
//
// where the left value is a's. Records are compared by their JSON encoding,
// which is what travels between leader and followers: two states that
// encode alike are equal, even if their times differ in monotonic clock
// readings or in *time.Location values of the same offset.
func Equal(a, b *events.State) error {
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil || b == nil:
		return fmt.Errorf("state: %s != %s", nilOrNot(a), nilOrNot(b))
	case a.Epoch != b.Epoch:
		return fmt.Errorf("epoch: %d != %d", a.Epoch, b.Epoch)
	case a.Seq != b.Seq:
		return fmt.Errorf("seq: %d != %d", a.Seq, b.Seq)
	}
	if err := diffValue("leader", a.Leader, b.Leader); err != nil {
		return err
	}
	if err := diffMap("agents", a.Agents, b.Agents); err != nil {
		return err
	}
	if err := diffMap("apps", a.Apps, b.Apps); err != nil {
		return err
	}
	if err := diffMap("tasks", a.Tasks, b.Tasks); err != nil {
		return err
	}
	if err := diffMap("deployments", a.Deployments, b.Deployments); err != nil {
		return err
	}
	if err := diffMap("groups", a.Groups, b.Groups); err != nil {
		return err
	}
	if err := diffMap("app versions", a.AppVersions, b.AppVersions); err != nil {
		return err
	}
	if err := diffMap("group versions", a.GroupVersions, b.GroupVersions); err != nil {
		return err
	}
	if err := diffMap("kept apps", a.KeptApps, b.KeptApps); err != nil {
		return err
	}
	return diffMap("app failures", a.AppFailures, b.AppFailures)
}

// Dump renders s as indented JSON with sorted keys, ending in a newline:
// the form golden files hold.
func Dump(s *events.State) string {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("eventstest.Dump: %v", err)) // a State always encodes
	}
	return string(data) + "\n"
}

func nilOrNot(s *events.State) string {
	if s == nil {
		return "nil"
	}
	return fmt.Sprintf("state %d-%d", s.Epoch, s.Seq)
}

func diffMap[V any](name string, a, b map[string]V) error {
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		path := fmt.Sprintf("%s[%q]", name, k)
		va, ina := a[k]
		vb, inb := b[k]
		switch {
		case !inb:
			return fmt.Errorf("%s: only in the first state", path)
		case !ina:
			return fmt.Errorf("%s: only in the second state", path)
		}
		if err := diffValue(path, va, vb); err != nil {
			return err
		}
	}
	return nil
}

func diffValue(path string, a, b any) error {
	ja, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("%s: encode: %v", path, err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("%s: encode: %v", path, err)
	}
	if bytes.Equal(ja, jb) {
		return nil
	}
	var ga, gb any
	_ = json.Unmarshal(ja, &ga)
	_ = json.Unmarshal(jb, &gb)
	if err := diffJSON(path, ga, gb); err != nil {
		return err
	}
	// Same values, different bytes: cannot happen with encoding/json, but
	// never call a difference equal.
	return fmt.Errorf("%s: %s != %s", path, ja, jb)
}

// diffJSON walks two decoded JSON values and describes the first place
// they differ.
func diffJSON(path string, a, b any) error {
	switch va := a.(type) {
	case map[string]any:
		vb, ok := b.(map[string]any)
		if !ok {
			break
		}
		for _, k := range slices.Sorted(maps.Keys(va)) {
			if _, ok := vb[k]; !ok {
				return fmt.Errorf("%s.%s: only in the first state", path, k)
			}
			if err := diffJSON(path+"."+k, va[k], vb[k]); err != nil {
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(vb)) {
			if _, ok := va[k]; !ok {
				return fmt.Errorf("%s.%s: only in the second state", path, k)
			}
		}
		return nil
	case []any:
		vb, ok := b.([]any)
		if !ok {
			break
		}
		for i := range min(len(va), len(vb)) {
			if err := diffJSON(fmt.Sprintf("%s[%d]", path, i), va[i], vb[i]); err != nil {
				return err
			}
		}
		if len(va) != len(vb) {
			return fmt.Errorf("%s: length %d != %d", path, len(va), len(vb))
		}
		return nil
	default:
		if a == b {
			return nil
		}
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return fmt.Errorf("%s: %s != %s", path, ja, jb)
}
