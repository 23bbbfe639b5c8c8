package master

import (
	"net/http/httptest"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// go-marathon decodes /v2/info into strict Go types: every number must be
// a number, every string a string or null. What atoll fills in is there.
func TestInfoDecodesWithGoMarathon(t *testing.T) {
	m, h := newAPI(t, "")
	m.cfg.TaskLaunchTimeout = 90 * time.Second
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := marathon.NewClient(marathon.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info()
	if err != nil {
		t.Fatalf("go-marathon Info: %v", err)
	}
	mc := info.MarathonConfig
	if mc.TaskLaunchTimeout != 90000 || mc.Ha || mc.ReconciliationInterval <= 0 || mc.LocalPortMin != 10000 || info.FrameworkID == "" {
		t.Errorf("marathon_config = %+v", mc)
	}
	if info.ZookeeperConfig.Zk != "" {
		t.Errorf("zk = %q without ZooKeeper", info.ZookeeperConfig.Zk)
	}
	res := call(t, h, "GET", "/v2/info", "")
	if at(t, res.json(t), "zookeeper_config", "zk_max_versions") != float64(DefaultMaxAppVersions) {
		t.Errorf("zk_max_versions: %s", res.body)
	}
}
