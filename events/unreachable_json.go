package events

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// UnmarshalJSON takes both of Marathon's forms: the object, and the
// string "disabled" that Marathon (and the master's API) write for a
// disabled strategy. Without the string form, one such app made every
// consumer of GET /v2/apps that decodes into App (the load balancer's
// Marathon source, the CLI) fail on the whole list. The record's own
// form, on NATS and on disk, stays the object.
func (u *UnreachableStrategy) UnmarshalJSON(data []byte) error {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '"' {
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return err
		}
		if s != "disabled" {
			return fmt.Errorf("unreachableStrategy: got %q, expected \"disabled\" or an object", s)
		}
		*u = UnreachableStrategy{Disabled: true}
		return nil
	}
	type plain UnreachableStrategy // without this method
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*u = UnreachableStrategy(p)
	return nil
}
