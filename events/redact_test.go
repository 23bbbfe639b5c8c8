package events_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

func secretApp(id string) events.App {
	a := eventstest.App(id, 1)
	a.Env = map[string]string{"DB_PASSWORD": "hunter2"}
	return a
}

// What NATS carries holds no env name or value, and redacting never
// changes the record it was given.
func TestEncodeEventRedacts(t *testing.T) {
	app := secretApp("/web")
	dep := eventstest.Deployment("d1", "/web")
	dep.Original = &app
	s := events.NewState()
	for _, c := range []events.Change{events.PutApp(app), events.PutDeployment(dep)} {
		e := c.Stamp(s, 1, eventstest.T0)
		data, err := events.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "hunter2") || strings.Contains(string(data), "DB_PASSWORD") {
			t.Errorf("%s on the wire: %s", e.Type, data)
		}
		back, err := events.DecodeEvent(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(back); err != nil {
			t.Fatal(err)
		}
	}
	if app.Env["DB_PASSWORD"] != "hunter2" || dep.Original.Env["DB_PASSWORD"] != "hunter2" {
		t.Errorf("redacting changed the leader's records")
	}
	if got := s.Apps["/web"]; got.Env == nil || len(got.Env) != 0 {
		t.Errorf("redacted app env %#v, want {}", got.Env)
	}
	if got := s.Deployments["d1"].Original; got == nil || len(got.Env) != 0 || got.ID != "/web" {
		t.Errorf("redacted deployment original %+v", got)
	}

	// An app without env stays as it was: nothing hidden, nothing changed.
	plain := eventstest.App("/plain", 1)
	plain.Env = nil
	data, err := events.EncodeEvent(events.PutApp(plain).Stamp(s, 1, eventstest.T0))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"env":null`) {
		t.Errorf("app without env encodes as %s", data)
	}
}

func TestStateRedacted(t *testing.T) {
	l := eventstest.NewLeader()
	l.Commit(events.PutApp(secretApp("/web")))
	l.Commit(events.PutApp(eventstest.App("/plain", 1)))
	full := l.State()
	red := full.Redacted()
	raw, err := json.Marshal(red)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "hunter2") || strings.Contains(string(raw), "DB_PASSWORD") {
		t.Errorf("redacted state: %s", raw)
	}
	if full.Apps["/web"].Env["DB_PASSWORD"] != "hunter2" {
		t.Errorf("Redacted changed the state it was given")
	}
	if red.Seq != full.Seq || red.Epoch != full.Epoch || len(red.Apps) != 2 || red.Leader == nil {
		t.Errorf("redacted state %d-%d with %d apps, leader %v", red.Epoch, red.Seq, len(red.Apps), red.Leader)
	}
	// A state with nothing to hide encodes as it is.
	l2 := eventstest.NewLeader()
	eventstest.Churn(l2, 1)
	if err := eventstest.Equal(l2.State().Redacted(), l2.State()); err != nil {
		t.Errorf("redacting a state without secrets: %v", err)
	}
}

// A follower's view never holds a secret, and it is self-consistent: the
// redacted snapshot plus the redacted events after it are the redacted
// leader state (WaitEqual compares exactly that).
func TestFollowerSeesNoSecrets(t *testing.T) {
	l := eventstest.NewLeader()
	eventstest.Churn(l, 100)
	f, m := eventstest.Follow(t, l, noTicks)
	m.WaitEqual(t, l)
	eventstest.Churn(l, 100)
	m.WaitEqual(t, l)
	wantResyncs(t, f, 0)

	if raw, _ := json.Marshal(l.State()); !strings.Contains(string(raw), eventstest.ChurnSecret) {
		t.Fatalf("the leader's state holds no secret: the test proves nothing")
	}
	if raw, _ := json.Marshal(m.State()); strings.Contains(string(raw), eventstest.ChurnSecret) {
		t.Errorf("the follower's state holds a secret: %s", raw)
	}
}
