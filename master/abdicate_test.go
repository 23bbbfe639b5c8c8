package master

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

// deleteLeader sends DELETE /v2/leader to m and returns the status and
// the message.
func deleteLeader(t *testing.T, m *zkMaster) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, m.httpURL+"/v2/leader", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var msg struct{ Message string }
	_ = json.Unmarshal(body, &msg)
	return res.StatusCode, msg.Message
}

// DELETE /v2/leader, sent to a standby (which forwards it) or to the
// leader, makes the leader step down: the next master leads with the
// state, and the old leader follows it.
func TestAbdicateHandsOverLeadership(t *testing.T) {
	e := testZK(t)
	ns := eventstest.StartNATS(t)
	root := zkRoot(t)
	m1 := startZKMaster(t, ns, e.Servers, root, "m1")
	leads(t, m1, 20*time.Second)
	m2 := startZKMaster(t, ns, e.Servers, root, "m2")
	leaderIs(t, m2, m1)
	if err := m1.commit(events.PutApp(eventstest.App("/kept", 0))); err != nil {
		t.Fatal(err)
	}

	if status, msg := deleteLeader(t, m2); status != http.StatusOK || msg != "Leadership abdicated" {
		t.Fatalf("DELETE /v2/leader on the standby: %d %q", status, msg)
	}
	leads(t, m2, 10*time.Second)
	leaderIs(t, m1, m2)
	m2.View(func(s *events.State) {
		if _, ok := s.Apps["/kept"]; !ok {
			t.Error("the new leader lost the app")
		}
	})

	// And back, asking the leader itself.
	if status, msg := deleteLeader(t, m2); status != http.StatusOK || msg != "Leadership abdicated" {
		t.Fatalf("DELETE /v2/leader on the leader: %d %q", status, msg)
	}
	leads(t, m1, 10*time.Second)
	leaderIs(t, m2, m1)
}

// A master without an election has nobody to hand over to: it refuses,
// and keeps leading.
func TestAbdicateWithoutElectionRefused(t *testing.T) {
	m, h := newAPI(t, "")
	res := call(t, h, "DELETE", "/v2/leader", "")
	if res.status != http.StatusConflict {
		t.Fatalf("DELETE /v2/leader without an election: %d %s", res.status, res.body)
	}
	if !m.Leading() {
		t.Fatal("the master stopped leading")
	}
	if res := call(t, h, "DELETE", "/v2/leader?backup=file:///tmp/x", ""); res.status != http.StatusBadRequest {
		t.Errorf("backup: %d %s", res.status, res.body)
	}
}
