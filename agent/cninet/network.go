// Package cninet gives containers Marathon's "container/bridge"
// networking with the standard CNI plugins (Debian's
// containernetworking-plugins): a network namespace per task on a bridge,
// an address from host-local IPAM, and portmap's DNAT so that
// HOST:hostPort (127.0.0.1 included) reaches containerPort.
//
// Who may use what: the state folder (namespace files, IPAM reservations,
// libcni's cache) is the agent's (root, 0700); the plugins run as root in
// the agent's network namespace and change its iptables nat table and the
// bridge's sysctls (ip_forward, route_localnet on the bridge only).
//
// Order matters on teardown: runc delete, then Detach (CNI DEL while the
// namespace still exists, else the bridge plugin leaks its masquerade
// chain), which removes the namespace last.
package cninet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// Options configure a Network.
type Options struct {
	// Subnet the containers' addresses come from ("172.31.0.0/16").
	Subnet string
	// Bridge is the host bridge's name; "" means atoll0.
	Bridge string
	// PluginDirs hold the CNI plugins; nil means /usr/lib/cni (Debian).
	PluginDirs []string
	// StateDir holds namespace files, IPAM reservations and libcni's
	// cache: kept across agent restarts so that adopted tasks keep
	// their addresses.
	StateDir string
	// HostNetNS is the namespace the bridge lives in ("" = this
	// process's); tests use one of their own so as not to touch the
	// machine's network.
	HostNetNS string
	// NoMasquerade leaves out source NAT for traffic leaving the bridge
	// (containers then have no way out unless routed).
	NoMasquerade bool
}

// PortMapping is one of Marathon's portMappings, resolved: HostPort is
// the port the agent assigned.
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp or udp ("" = tcp)
}

// Attachment is a task's place on the bridge.
type Attachment struct {
	NetNS   string // the namespace file, for the runtime spec
	IP      net.IP // the container's address (Marathon's ipAddresses)
	Gateway net.IP
}

// Network is the bridge network of one agent.
type Network struct {
	o    Options
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList
}

const networkName = "atoll"

// New prepares the network (the bridge itself appears with the first
// Attach).
func New(o Options) (*Network, error) {
	if _, _, err := net.ParseCIDR(o.Subnet); err != nil {
		return nil, fmt.Errorf("bridge network: subnet: %w", err)
	}
	if o.StateDir == "" {
		return nil, errors.New("bridge network: no state folder")
	}
	if o.Bridge == "" {
		o.Bridge = "atoll0"
	}
	if o.PluginDirs == nil {
		o.PluginDirs = []string{"/usr/lib/cni"}
	}
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		if _, err := findPlugin(o.PluginDirs, p); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"", "netns", "ipam", "cache"} {
		if err := os.MkdirAll(filepath.Join(o.StateDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("bridge network: %w", err)
		}
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       networkName,
		"plugins": []map[string]any{
			{
				"type": "bridge", "bridge": o.Bridge, "isGateway": true,
				"ipMasq": !o.NoMasquerade, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": o.Subnet}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(o.StateDir, "ipam"),
				},
			},
			// snat: what makes 127.0.0.1:hostPort reach the container
			// (it sets route_localnet on the bridge and masquerades
			// hairpin and local traffic).
			{"type": "portmap", "snat": true, "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, _ := json.Marshal(conf)
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("bridge network: %w", err)
	}
	return &Network{
		o:    o,
		cni:  libcni.NewCNIConfigWithCacheDir(o.PluginDirs, filepath.Join(o.StateDir, "cache"), nil),
		list: list,
	}, nil
}

func findPlugin(dirs []string, name string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("bridge network: CNI plugin %q not in %s (apt-get install containernetworking-plugins)", name, strings.Join(dirs, ":"))
}

// NetNSPath is where task id's namespace file is.
func (n *Network) NetNSPath(id string) string {
	return filepath.Join(n.o.StateDir, "netns", id)
}

func (n *Network) runtimeConf(id string, ports []PortMapping) *libcni.RuntimeConf {
	pm := make([]map[string]any, 0, len(ports))
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		pm = append(pm, map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": proto})
	}
	return &libcni.RuntimeConf{
		ContainerID: id, NetNS: n.NetNSPath(id), IfName: "eth0",
		CapabilityArgs: map[string]any{"portMappings": pm},
	}
}

// Attach makes task id's namespace (its loopback up), puts it on the
// bridge and maps its ports. On failure nothing stays behind.
func (n *Network) Attach(ctx context.Context, id string, ports []PortMapping) (*Attachment, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") {
		return nil, fmt.Errorf("bridge network: bad id %q", id)
	}
	for _, p := range ports {
		if p.Protocol != "" && p.Protocol != "tcp" && p.Protocol != "udp" {
			return nil, fmt.Errorf("bridge network: protocol %q (tcp or udp)", p.Protocol)
		}
	}
	nsPath := n.NetNSPath(id)
	if err := NewNetNS(nsPath); err != nil {
		return nil, err
	}
	var res *types100.Result
	err := InNetNS(n.o.HostNetNS, func() error {
		r, err := n.cni.AddNetworkList(ctx, n.list, n.runtimeConf(id, ports))
		if err != nil {
			return err
		}
		res, err = types100.NewResultFromResult(r)
		return err
	})
	if err != nil {
		n.Detach(context.WithoutCancel(ctx), id)
		return nil, fmt.Errorf("bridge network: attach %s: %w", id, err)
	}
	return attachment(nsPath, res)
}

func attachment(nsPath string, res *types100.Result) (*Attachment, error) {
	for _, ip := range res.IPs {
		if ip.Address.IP.To4() != nil {
			return &Attachment{NetNS: nsPath, IP: ip.Address.IP, Gateway: ip.Gateway}, nil
		}
	}
	return nil, errors.New("bridge network: the plugins gave no IPv4 address")
}

// Adopt finds task id's attachment after an agent restart, from libcni's
// cache and the namespace file (CNI CHECK is not used: the portmap plugin
// 1.1.1 fails it on IPv4-only networks).
func (n *Network) Adopt(id string) (*Attachment, error) {
	nsPath := n.NetNSPath(id)
	if _, err := os.Stat(nsPath); err != nil {
		return nil, fmt.Errorf("bridge network: adopt %s: %w", id, err)
	}
	r, err := n.cni.GetNetworkListCachedResult(n.list, n.runtimeConf(id, nil))
	if err != nil || r == nil {
		return nil, fmt.Errorf("bridge network: adopt %s: no cached result (%v)", id, err)
	}
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("bridge network: adopt %s: %w", id, err)
	}
	return attachment(nsPath, res)
}

// Detach removes task id's port mappings, address and namespace. Call it
// after the container is deleted; detaching twice is fine.
func (n *Network) Detach(ctx context.Context, id string) error {
	rt := n.runtimeConf(id, nil)
	// The mappings given at Attach, as libcni cached them.
	if _, cached, err := n.cni.GetNetworkListCachedConfig(n.list, rt); err == nil && cached != nil {
		rt.CapabilityArgs = cached.CapabilityArgs
	}
	err := InNetNS(n.o.HostNetNS, func() error {
		return n.cni.DelNetworkList(ctx, n.list, rt)
	})
	if rerr := RemoveNetNS(n.NetNSPath(id)); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("bridge network: detach %s: %w", id, err)
	}
	return nil
}
