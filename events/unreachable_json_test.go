package events

import (
	"encoding/json"
	"testing"
)

// An app with Marathon's "disabled" strategy decodes; the record keeps
// writing the object, so what is on NATS and on disk does not change.
func TestUnreachableStrategyTakesMarathonsString(t *testing.T) {
	var a App
	if err := json.Unmarshal([]byte(`{"id":"/a","unreachableStrategy":"disabled"}`), &a); err != nil {
		t.Fatal(err)
	}
	if a.UnreachableStrategy == nil || !a.UnreachableStrategy.Disabled {
		t.Fatalf("%+v", a.UnreachableStrategy)
	}
	out, _ := json.Marshal(a.UnreachableStrategy)
	if string(out) != `{"inactiveAfterSeconds":0,"expungeAfterSeconds":0,"disabled":true}` {
		t.Errorf("record form %s", out)
	}
	var back UnreachableStrategy
	if err := json.Unmarshal(out, &back); err != nil || !back.Disabled {
		t.Errorf("record form back: %v %+v", err, back)
	}
	if err := json.Unmarshal([]byte(`{"inactiveAfterSeconds":5,"expungeAfterSeconds":9}`), &back); err != nil ||
		back != (UnreachableStrategy{InactiveAfterSeconds: 5, ExpungeAfterSeconds: 9}) {
		t.Errorf("object form: %v %+v", err, back)
	}
	if err := json.Unmarshal([]byte(`"sometimes"`), &back); err == nil {
		t.Error(`"sometimes" decoded`)
	}
}
