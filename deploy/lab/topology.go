package main

import "fmt"

// The lab is the seeds' three-region hybrid cloud on one machine: every
// host is a network namespace, every region a bridge (in a "switch"
// namespace of its own, so nothing lives in the machine's namespace), and
// one router namespace joins the regions the way the paper's VPN gateways
// did: cutting a region is `ip link set <region> down` in the router.
// Addresses come only from 198.18.0.0/15: region r is 198.18.r.0/24 and
// the router is 198.18.r.1 in it.

// nsPrefix starts every namespace the lab makes; down removes exactly those.
const nsPrefix = "atoll-"

const routerNS = nsPrefix + "router"

// Region is one of the seeds' three regions.
type Region struct {
	N    int    // 1..3, the third octet of its subnet
	Name string // the paper's city, the agents' region attribute
}

var regions = []Region{{1, "oslo"}, {2, "frankfurt"}, {3, "ireland"}}

// Host is one machine of a region: a namespace with one address.
type Host struct {
	Region Region
	Short  string // m, n, a1, a2, s, c
	Octet  int    // last octet of its address
}

// The hosts of every region. The master node also runs that region's
// ZooKeeper, as the paper's Mesos master nodes did: the partition test
// cuts a master node, ZooKeeper and master together, from the others.
var hostKinds = []struct {
	short string
	octet int
}{{"m", 10}, {"n", 11}, {"a1", 21}, {"a2", 22}, {"s", 30}}

// clientHost is where chaos traffic comes from: region 1, whose sidecar
// the scenarios never take away.
var clientHost = Host{Region: regions[0], Short: "c", Octet: 100}

func (h Host) NS() string          { return fmt.Sprintf("%sr%d-%s", nsPrefix, h.Region.N, h.Short) }
func (h Host) IP() string          { return fmt.Sprintf("198.18.%d.%d", h.Region.N, h.Octet) }
func (h Host) Name() string        { return fmt.Sprintf("r%d-%s", h.Region.N, h.Short) }
func (r Region) SwitchNS() string  { return fmt.Sprintf("%sr%d-sw", nsPrefix, r.N) }
func (r Region) Gateway() string   { return fmt.Sprintf("198.18.%d.1", r.N) }
func (r Region) RouterDev() string { return fmt.Sprintf("r%d", r.N) }

// host returns region r's host of the given kind.
func host(r Region, short string) Host {
	for _, k := range hostKinds {
		if k.short == short {
			return Host{Region: r, Short: short, Octet: k.octet}
		}
	}
	if short == clientHost.Short && r.N == clientHost.Region.N {
		return clientHost
	}
	panic("lab: no host kind " + short)
}

// allHosts lists every host of the lab, the client included.
func allHosts() []Host {
	var hs []Host
	for _, r := range regions {
		for _, k := range hostKinds {
			hs = append(hs, Host{Region: r, Short: k.short, Octet: k.octet})
		}
	}
	return append(hs, clientHost)
}

// regionByName accepts "2", "r2" or "frankfurt".
func regionByName(s string) (Region, error) {
	for _, r := range regions {
		if s == r.Name || s == fmt.Sprint(r.N) || s == fmt.Sprintf("r%d", r.N) {
			return r, nil
		}
	}
	return Region{}, fmt.Errorf("no region %q (1..3, r1..r3 or oslo, frankfurt, ireland)", s)
}

// Service ports and addresses every process uses.
const (
	zkClientPort = 2181
	natsPort     = 4222
	routePort    = 6222
	masterPort   = 8080
)

func zkConnect() string {
	s := "zk://"
	for i, r := range regions {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%s:%d", host(r, "m").IP(), zkClientPort)
	}
	return s + "/atoll"
}

func natsURL(r Region) string { return fmt.Sprintf("nats://%s:%d", host(r, "n").IP(), natsPort) }

func natsRoutes() string {
	s := ""
	for i, r := range regions {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("nats://%s:%d", host(r, "n").IP(), routePort)
	}
	return s
}

func masterURL(r Region) string { return fmt.Sprintf("http://%s:%d", host(r, "m").IP(), masterPort) }
