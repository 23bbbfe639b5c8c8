package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// api reads the cluster's public APIs from the client namespace.
type api struct {
	hc *http.Client
	ns string
}

func newAPI() *api {
	return &api{hc: httpClient(clientHost.NS(), 3*time.Second, true), ns: clientHost.NS()}
}

// getJSON GETs url into v; anything but 200 is an error with the body.
func (a *api) getJSON(url string, v any) error {
	resp, err := a.hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// send makes a request with a JSON body and wants a 2xx.
func (a *api) send(method, url string, body []byte) error {
	req, err := http.NewRequest(method, url, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// leaderOf asks one master who leads ("ip:port"), "" without a leader.
func (a *api) leaderOf(r Region) (string, error) {
	var v struct {
		Leader string `json:"leader"`
	}
	if err := a.getJSON(masterURL(r)+"/v2/leader", &v); err != nil {
		return "", err
	}
	return v.Leader, nil
}

// App and Task are the fields of /v2/apps and /v2/tasks the lab reads.
type App struct {
	ID           string `json:"id"`
	Instances    int    `json:"instances"`
	TasksRunning int    `json:"tasksRunning"`
	Version      string `json:"version"`
	PortDefs     []struct {
		Port int `json:"port"`
	} `json:"portDefinitions"`
	Deployments []struct {
		ID string `json:"id"`
	} `json:"deployments"`
}

type Task struct {
	ID      string `json:"id"`
	AppID   string `json:"appId"`
	Host    string `json:"host"`
	SlaveID string `json:"slaveId"`
	State   string `json:"state"`
	Ports   []int  `json:"ports"`
}

type Agent struct {
	ID       string            `json:"id"`
	Hostname string            `json:"hostname"`
	Active   bool              `json:"active"`
	Attrs    map[string]string `json:"attributes"`
}

func (a *api) apps(base string) ([]App, error) {
	var v struct {
		Apps []App `json:"apps"`
	}
	err := a.getJSON(base+"/v2/apps", &v)
	return v.Apps, err
}

func (a *api) tasks(base string) ([]Task, error) {
	var v struct {
		Tasks []Task `json:"tasks"`
	}
	err := a.getJSON(base+"/v2/tasks", &v)
	return v.Tasks, err
}

func (a *api) agents(base string) ([]Agent, error) {
	var v struct {
		Slaves []Agent `json:"slaves"`
	}
	err := a.getJSON(base+"/master/state", &v)
	return v.Slaves, err
}

// zkMode asks a ZooKeeper server "srvr" and returns its Mode line
// ("leader", "follower", "standalone"), or the error.
func (a *api) zkMode(r Region) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := nsDialer{a.ns}.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", host(r, "m").IP(), zkClientPort))
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return "", err
	}
	b, _ := io.ReadAll(c)
	for _, line := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	return "", fmt.Errorf("no mode: %q", strings.TrimSpace(string(b)))
}

// lookup asks server (ip) for name's A records over UDP.
func (a *api) lookup(server, name string, timeout time.Duration) ([]string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := nsDialer{a.ns}.DialContext(ctx, "udp", net.JoinHostPort(server, "53"))
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	cl := &dns.Client{Timeout: timeout}
	in, _, err := cl.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: c})
	if err != nil {
		return nil, 0, err
	}
	var ips []string
	for _, rr := range in.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips, in.Rcode, nil
}
