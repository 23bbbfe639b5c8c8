package master

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/events/eventstest"
)

func TestParseZKURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		servers []string
		path    string
		auth    string
		err     bool
	}{
		{url: "zk://h1:2181,h2:2182,h3:2183/atoll", servers: []string{"h1:2181", "h2:2182", "h3:2183"}, path: "/atoll"},
		{url: "zk://127.0.0.1/a/b/", servers: []string{"127.0.0.1:2181"}, path: "/a/b"},
		{url: "zk://atoll:s3cret@h1:2181/atoll", servers: []string{"h1:2181"}, path: "/atoll", auth: "atoll:s3cret"},
		{url: "zk://h1:2181", err: true},
		{url: "zk://h1:2181/", err: true},
		{url: "zk://h1:2181,,h2/atoll", err: true},
		{url: "zk://user@h1/atoll", err: true},
		{url: "http://h1:2181/atoll", err: true},
		{url: "h1:2181/atoll", err: true},
	} {
		z, err := ParseZKURL(tc.url)
		if tc.err {
			if err == nil {
				t.Errorf("%s: no error", tc.url)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if !slices.Equal(z.Servers, tc.servers) || z.Path != tc.path || z.Auth != tc.auth || z.SessionTimeout != DefaultZKSessionTimeout {
			t.Errorf("%s: got %+v", tc.url, z)
		}
	}
	z, _ := ParseZKURL("zk://atoll:s3cret@h1:2181/atoll")
	if s := z.String(); s != "zk://h1:2181/atoll" {
		t.Errorf("String() = %q: credentials must not show", s)
	}
}

// TestZKDigestACL: with credentials the state is the master's alone, while
// anyone may read the candidates to find the leader, as Mesos-DNS does.
func TestZKDigestACL(t *testing.T) {
	e := testZK(t)
	ns := eventstest.StartNATS(t)
	root := zkRoot(t)
	m, err := New(Config{
		NC: eventstest.Connect(t, ns),
		ZK: &ZKConfig{Servers: e.Servers, Path: root, SessionTimeout: time.Second, Auth: "atoll:s3cret"},
		ID: "m1", Log: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	zm := runZKMaster(t, m)
	leads(t, zm, 20*time.Second)
	if err := zm.commit(events.PutApp(eventstest.App("/secret", 0))); err != nil {
		t.Fatal(err)
	}

	anon := zkConnect(t, e.Servers)
	names, _, err := anon.Children(root)
	if err != nil {
		t.Fatal(err)
	}
	cands := candidates(names)
	if len(cands) != 1 {
		t.Fatalf("candidates %v", names)
	}
	if _, _, err := anon.Get(root + "/" + cands[0]); err != nil {
		t.Fatalf("anonymous read of the leader's info: %v", err)
	}
	conn := zkConnect(t, e.Servers)
	if err := conn.AddAuth("digest", []byte("atoll:s3cret")); err != nil {
		t.Fatal(err)
	}
	apps, _, err := conn.Children(root + "/state/apps")
	if err != nil || len(apps) != 1 || !strings.HasPrefix(apps[0], "%2Fsecret@") {
		t.Fatalf("app znodes %v (%v), want one %%2Fsecret@<seq>", apps, err)
	}
	for _, p := range []string{"/state/apps", "/state/apps/" + apps[0], "/state/counter"} {
		if _, _, err := anon.Get(root + p); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("anonymous read of %s: %v, want ErrNoAuth", p, err)
		}
	}
	if _, err := anon.Set(root+"/leader_epoch", nil, -1); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("anonymous write of leader_epoch: %v, want ErrNoAuth", err)
	}
}
