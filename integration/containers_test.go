package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/atollhq/atoll/internal/imagetest"
	"github.com/atollhq/atoll/internal/registrytest"
)

// ctrBridgeSubnet is where the agents' bridges give containers their
// addresses (inside the test's own network namespace).
// (agent i's is 198.18.2i.0/24).
const ctrBridgeSubnet = "198.18.2%d.0/24"

// TestContainerApps runs a Marathon docs-style Docker app with bridged
// networking from an image in a registry on loopback: three instances
// answer on HOST:hostPort, through HAProxy on the service port and in DNS;
// a rolling deploy to the image's next tag under load loses no request; a
// restarted agent re-adopts its containers; deleting the app removes the
// containers and, after the agents' delay, their root filesystems; a bad
// image fails its tasks with a clear message in the task and in the
// deployment. Real runc, registry, CNI plugins and HAProxy, in a network
// namespace of the test's own (netns_test.go).
func TestContainerApps(t *testing.T) {
	if !inOwnNetNS(t) {
		return
	}
	for _, bin := range []string{"runc", "haproxy"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed: %v (make test-deps installs it)", bin, err)
		}
	}
	reg := registrytest.Start(t, registrytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, tag := range []string{"1", "2"} {
		pushEchoImage(t, ctx, reg.Host+"/echo:"+tag, tag)
	}

	// The agents share the test's namespace: each has a bridge and a
	// subnet of its own, as `atoll dev`'s agents do.
	c := startCluster(t, clusterOptions{agents: 2,
		agentArgs: []string{"--insecure-registries", reg.Host, "--sandbox-gc-delay", "2s"},
		agentArgsFor: func(i int) []string {
			return []string{"--bridge-name", fmt.Sprintf("atollit%d", i), "--bridge-subnet", fmt.Sprintf(ctrBridgeSubnet, i)}
		}})
	t.Cleanup(func() { removeContainers(t, c.dir) })
	lb := lbStart(c, lbNodeOptions{})
	dns := hcStartDNS(c)
	servicePort := lbFreePort(t, "127.0.0.1")
	front := lb.front(servicePort)

	const appID = "/it/ctr"
	c.mustDo("POST", "/v2/apps", ctrApp(appID, reg.Host+"/echo:1", servicePort), 201, nil)
	ts := c.ctrWaitSteady(appID, 3, 3*time.Minute, "")

	t.Run("EachTaskAnswersOnItsHostPort", func(t *testing.T) {
		_, subnet, _ := net.ParseCIDR("198.18.0.0/15")
		for _, task := range ts {
			if len(task.Ports) != 1 {
				t.Fatalf("task %s has host ports %v, want 1", task.ID, task.Ports)
			}
			if len(task.IPAddresses) == 0 || !subnet.Contains(net.ParseIP(task.IPAddresses[0].IPAddress)) {
				t.Errorf("task %s: ipAddresses %v, want its container's address in 198.18.0.0/15", task.ID, task.IPAddresses)
			}
			addr := net.JoinHostPort(ctrAgentIP(t, task.Host), strconv.Itoa(task.Ports[0]))
			if got, err := echoAt(addr); err != nil || got != task.ID {
				t.Errorf("GET %s: task %q, %v; want %s", addr, got, err, task.ID)
			}
		}
	})
	t.Run("ServedByHAProxyOnTheServicePort", func(t *testing.T) {
		c.lbWaitServed(front, "", appID, 30*time.Second)
	})
	t.Run("SRVRecordsGiveTheAgentsAndHostPorts", func(t *testing.T) {
		var want []string
		for _, task := range ts {
			want = append(want, net.JoinHostPort(ctrAgentIP(t, task.Host), strconv.Itoa(task.Ports[0])))
		}
		slices.Sort(want)
		c.waitFor(15*time.Second, "SRV records of ctr.it", func() (bool, string) {
			srv, _, err := hcDNSTargets(dns, "ctr.it")
			if err != nil {
				return false, err.Error()
			}
			return slices.Equal(srv, want), fmt.Sprintf("SRV %v, want %v", srv, want)
		})
	})

	t.Run("GoMarathonTaskEndpoints", func(t *testing.T) {
		client, err := marathon.NewClient(marathon.Config{URL: c.api, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		// go-marathon takes the container port and answers host:hostPort
		// of the healthy tasks.
		got, err := client.TaskEndpoints(appID, 8080, true)
		if err != nil {
			t.Fatalf("TaskEndpoints: %v", err)
		}
		var want []string
		for _, task := range ts {
			want = append(want, net.JoinHostPort(task.Host, strconv.Itoa(task.Ports[0])))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("TaskEndpoints = %v, want %v", got, want)
		}
	})

	t.Run("RollingDeployToTheNextImageUnderLoadLosesNothing", func(t *testing.T) {
		load := lbStartLoad("http://"+front+"/", 2, 2)
		load.setPhase("deploy echo:2")
		c.mustDo("PUT", "/v2/apps"+appID, map[string]any{"container": ctrContainer(reg.Host + "/echo:2")}, 200, nil)
		ts = c.ctrWaitSteady(appID, 3, 3*time.Minute, reg.Host+"/echo:2")
		c.lbWaitServed(front, "", appID, 30*time.Second)
		load.setPhase("after")
		time.Sleep(500 * time.Millisecond) // requests after the switch, to the new tasks only
		load.stop()
		t.Logf("%d requests during the deploy, %d failed", load.ok.Load()+load.failed.Load(), load.failed.Load())
		if load.ok.Load() == 0 {
			t.Fatal("no request succeeded")
		}
		if f := load.failed.Load(); f != 0 {
			t.Errorf("%d failed requests; per phase %v; first: %v", f, load.byPhase, load.failures)
		}
	})

	t.Run("ARestartedAgentReadoptsItsContainers", func(t *testing.T) {
		before := ids(ts)
		var on1 []apiTask
		for _, task := range ts {
			if task.Host == "agent-1" {
				on1 = append(on1, task)
			}
		}
		if len(on1) == 0 {
			t.Skip("no task on agent-1")
		}
		c.signal(c.agents[0], syscall.SIGTERM)
		c.startAgent(1)
		c.waitFor(30*time.Second, "agent-1 to adopt its containers", func() (bool, string) {
			log, _ := os.ReadFile(c.agents[0].log)
			n := strings.Count(string(log), `msg="adopted container"`)
			return n == len(on1), fmt.Sprintf("%d of %d adopted", n, len(on1))
		})
		c.waitFor(30*time.Second, "2 active agents", func() (bool, string) {
			n := c.activeAgents()
			return n == 2, fmt.Sprintf("%d active", n)
		})
		ts = c.ctrWaitSteady(appID, 3, time.Minute, reg.Host+"/echo:2")
		if !slices.Equal(ids(ts), before) {
			t.Errorf("tasks after the agent's restart %v, want the same %v", ids(ts), before)
		}
		for _, task := range on1 {
			addr := net.JoinHostPort(ctrAgentIP(t, task.Host), strconv.Itoa(task.Ports[0]))
			if got, err := echoAt(addr); err != nil || got != task.ID {
				t.Errorf("adopted %s at %s: %q, %v", task.ID, addr, got, err)
			}
		}
	})

	t.Run("DeletingTheAppRemovesContainersAndLaterTheirRootFilesystems", func(t *testing.T) {
		if n := len(ctrRootfsDirs(c.dir)); n == 0 {
			t.Fatalf("no root filesystems found under %s before the delete", c.dir)
		}
		c.mustDo("DELETE", "/v2/apps"+appID, nil, 200, nil)
		c.waitFor(time.Minute, "no container left", func() (bool, string) {
			left := runcContainers(c.dir)
			return len(left) == 0 && len(c.tasks(appID)) == 0, fmt.Sprintf("containers %v", left)
		})
		c.waitFor(30*time.Second, "root filesystems removed after the delay", func() (bool, string) {
			left := ctrRootfsDirs(c.dir)
			return len(left) == 0, fmt.Sprint(left)
		})
	})

	t.Run("ABadImageFailsItsTasksWithAClearMessage", func(t *testing.T) {
		const bad = "/it/ctr-bad"
		c.mustDo("POST", "/v2/apps", ctrApp(bad, reg.Host+"/no-such-image:1", 0), 201, nil)
		c.waitFor(time.Minute, "the failure's cause in lastTaskFailure and the deployment", func() (bool, string) {
			var body struct {
				App struct {
					LastTaskFailure *struct {
						State, Message string
					} `json:"lastTaskFailure"`
					Deployments []struct{ ID string } `json:"deployments"`
				} `json:"app"`
			}
			code, data := c.do("GET", "/v2/apps"+bad+"?embed=apps.lastTaskFailure", nil)
			if code != 200 || json.Unmarshal(data, &body) != nil || body.App.LastTaskFailure == nil {
				return false, fmt.Sprintf("%d %.300s", code, data)
			}
			f := body.App.LastTaskFailure
			if f.State != "TASK_FAILED" || !strings.Contains(f.Message, "no-such-image") {
				return false, fmt.Sprintf("lastTaskFailure %+v", f)
			}
			_, deps := c.do("GET", "/v2/deployments", nil)
			return strings.Contains(string(deps), "no-such-image"), fmt.Sprintf("deployments %.500s", deps)
		})
		c.mustDo("DELETE", "/v2/apps"+bad, nil, 200, nil)
	})
}

// ctrContainer is Marathon's container of a Docker app whose port 8080
// is mapped to a host port the master assigns.
func ctrContainer(image string) map[string]any {
	return map[string]any{
		"type":   "DOCKER",
		"docker": map[string]any{"image": image},
		"portMappings": []map[string]any{{
			"containerPort": 8080, "hostPort": 0, "protocol": "tcp", "name": "http",
		}},
	}
}

// ctrApp is the docs-style bridged app of image (the image's entrypoint
// is `atoll echo` on port 8080), health-checked as marathon-lb's
// zero-downtime deployments want.
func ctrApp(id, image string, servicePort int) map[string]any {
	container := ctrContainer(image)
	container["portMappings"].([]map[string]any)[0]["servicePort"] = servicePort
	return map[string]any{
		"id": id, "instances": 3, "cpus": 0.1, "mem": 64,
		"labels":    map[string]string{"HAPROXY_GROUP": "external"},
		"container": container,
		"networks":  []map[string]any{{"mode": "container/bridge"}},
		"healthChecks": []map[string]any{{
			"protocol": "HTTP", "path": "/health", "portIndex": 0,
			"gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 1,
			"maxConsecutiveFailures": 3, "delaySeconds": 0,
		}},
		"upgradeStrategy": map[string]any{"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
		"backoffSeconds":  0.5,
	}
}

// pushEchoImage builds an image whose entrypoint is `atoll echo` on port
// 8080 (the static atoll binary TestMain built) and pushes it to ref.
func pushEchoImage(t *testing.T, ctx context.Context, ref, tag string) {
	t.Helper()
	files := append(imagetest.Base(), imagetest.File{Path: "bin/atoll", Mode: 0o755, Src: atollBin})
	layer, err := imagetest.Layer(files...)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagetest.Image(v1.Config{
		Entrypoint: []string{"/bin/atoll", "echo", "--listen", ":8080"},
		Env:        []string{"PATH=/bin", "ECHO_IMAGE_TAG=" + tag},
		WorkingDir: "/",
	}, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagetest.Push(ctx, ref, img, "", ""); err != nil {
		t.Fatal(err)
	}
}

// ctrWaitSteady waits until no deployment runs and the app has n healthy
// running tasks (of image, when not empty), and returns them.
func (c *cluster) ctrWaitSteady(appID string, n int, timeout time.Duration, image string) []apiTask {
	c.t.Helper()
	var ts []apiTask
	c.waitFor(timeout, fmt.Sprintf("%s: %d healthy running tasks, no deployment", appID, n), func() (bool, string) {
		if ok, st := c.lbDeploymentsDone(); !ok {
			return false, st
		}
		var app struct {
			App struct {
				Container struct {
					Docker struct{ Image string }
				}
				TasksHealthy int `json:"tasksHealthy"`
				TasksRunning int `json:"tasksRunning"`
			}
		}
		code, data := c.do("GET", "/v2/apps"+appID, nil)
		if code != 200 || json.Unmarshal(data, &app) != nil {
			return false, fmt.Sprintf("GET app: %d %.200s", code, data)
		}
		if image != "" && app.App.Container.Docker.Image != image {
			return false, "image " + app.App.Container.Docker.Image
		}
		ts = c.tasks(appID)
		return len(ts) == n && app.App.TasksRunning == n && app.App.TasksHealthy == n,
			fmt.Sprintf("%d tasks, %d running, %d healthy", len(ts), app.App.TasksRunning, app.App.TasksHealthy)
	})
	return ts
}

// ctrAgentIP is the address agent host advertises.
func ctrAgentIP(t *testing.T, host string) string {
	t.Helper()
	i, err := strconv.Atoi(strings.TrimPrefix(host, "agent-"))
	if err != nil {
		t.Fatalf("task host %q is not one of the test's agents", host)
	}
	return agentIP(i)
}

// echoAt asks the `atoll echo` at addr which task it is.
func echoAt(addr string) (string, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		TaskID string `json:"taskId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.TaskID, nil
}

// runcRoots are the agents' runc state folders under dir.
func runcRoots(dir string) []string {
	roots, _ := filepath.Glob(filepath.Join(dir, "agent-*", "runc"))
	more, _ := filepath.Glob(filepath.Join(dir, "agent-*", "*", "runc"))
	return append(roots, more...)
}

// runcContainers lists the containers runc knows under dir's agents.
func runcContainers(dir string) []string {
	var all []string
	for _, root := range runcRoots(dir) {
		out, err := exec.Command("runc", "--root", root, "list", "-q").Output()
		if err != nil {
			continue
		}
		all = append(all, strings.Fields(string(out))...)
	}
	return all
}

// ctrRootfsDirs are the per-task folders (the root filesystem's upper
// layer and mount point, the bundle) of the agents' containers.
func ctrRootfsDirs(dir string) []string {
	var found []string
	for _, pattern := range []string{"agent-*/state/containers/*"} {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		found = append(found, m...)
	}
	return found
}

// removeContainers stops whatever containers the test's agents left
// (agents leave their tasks running when they stop, to adopt them again).
func removeContainers(t *testing.T, dir string) {
	for _, root := range runcRoots(dir) {
		out, _ := exec.Command("runc", "--root", root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			if b, err := exec.Command("runc", "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
				t.Logf("runc delete %s: %v: %s", id, err, b)
			}
		}
	}
	// Unmount what a stopped agent left mounted, so that the test's
	// folder can go.
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir) {
			_ = exec.Command("umount", "-l", f[1]).Run()
		}
	}
}
