package dnsserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// The HTTP API of Mesos-DNS (its docs/http.md and resolver.go), read from
// the same zone the DNS server answers from, plus /metrics. Routes and
// their JSON shapes follow Mesos-DNS so that tools written for it work;
// where Mesos-DNS answers an unknown name with 200 and an empty record, we
// answer 404 with a message, as the issue asks.

// NewHTTPHandler serves the API. zone returns the current zone, nil before
// the first complete snapshot: then the zone's routes answer 503, since an
// empty answer would claim that names do not exist.
func NewHTTPHandler(cfg Config, zone func() *Zone, metrics *Metrics, version string) http.Handler {
	a := &httpAPI{cfg: cfg.withDefaults(), zone: zone, version: version}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", a.getVersion)
	mux.HandleFunc("GET /v1/config", a.getConfig)
	mux.HandleFunc("GET /v1/hosts/{host}", a.withZone(a.getHosts))
	mux.HandleFunc("GET /v1/services/{service}", a.withZone(a.getServices))
	mux.HandleFunc("GET /v1/enumerate", a.withZone(a.getEnumerate))
	mux.HandleFunc("GET /v1/axfr", a.withZone(a.getAXFR))
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such API route: %s %s", r.Method, r.URL.Path))
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics.Handler())
	}
	return mux
}

// withProfiling adds heap and CPU profiles of the running sidecar to h
// (the DNS benchmark reads the live heap after a GC from
// /debug/pprof/heap?gc=1). Only on request: a profile shows the cluster's
// names and costs CPU, and this API has no credentials.
func withProfiling(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	return mux
}

type httpAPI struct {
	cfg     Config
	zone    func() *Zone
	version string
}

// withZone answers 503 until there is a zone, and hands it to h otherwise:
// one zone per request, so a request never mixes two snapshots.
func (a *httpAPI) withZone(h func(http.ResponseWriter, *http.Request, *Zone)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		z := a.zone()
		if z == nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "no complete snapshot of the cluster yet; the records are not built")
			return
		}
		h(w, r, z)
	}
}

// getVersion answers as Mesos-DNS does: {"Service","URL","Version"}.
func (a *httpAPI) getVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Service string `json:"Service"`
		URL     string `json:"URL"`
		Version string `json:"Version"`
	}{"atoll-dns", "https://github.com/atollhq/atoll", a.version})
}

// configView is what /v1/config shows. It lists fields one by one rather
// than marshalling Config, so that a credential added to Config later is
// never published by accident.
type configView struct {
	Addr           string   `json:"Addr"`
	Domain         string   `json:"Domain"`
	Framework      string   `json:"Framework"`
	TTL            uint32   `json:"TTL"`
	Resolvers      []string `json:"Resolvers"`
	ForwardTimeout string   `json:"ForwardTimeout"`
	RecursionCIDRs []string `json:"RecursionCIDRs"`
	UDPSockets     int      `json:"UDPSockets"`
}

// getConfig shows the effective configuration, defaults filled in.
func (a *httpAPI) getConfig(w http.ResponseWriter, _ *http.Request) {
	c := a.cfg
	v := configView{
		Addr: c.Addr, Domain: c.Domain, Framework: c.Framework, TTL: c.TTL,
		Resolvers:      append([]string{}, c.Resolvers...),
		ForwardTimeout: c.ForwardTimeout.String(),
		RecursionCIDRs: []string{},
		UDPSockets:     c.UDPSockets,
	}
	for _, p := range c.RecursionCIDRs {
		v.RecursionCIDRs = append(v.RecursionCIDRs, p.String())
	}
	if v.UDPSockets <= 0 {
		v.UDPSockets = runtime.GOMAXPROCS(0)
	}
	writeJSON(w, http.StatusOK, v)
}

// hostRecord and serviceRecord are Mesos-DNS's shapes; its port is a
// string, and so is ours, for the tools that parse it.
type hostRecord struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

type serviceRecord struct {
	Service string `json:"service"`
	Host    string `json:"host"`
	IP      string `json:"ip"`
	Port    string `json:"port"`
}

// getHosts answers the A and AAAA records of a name.
func (a *httpAPI) getHosts(w http.ResponseWriter, r *http.Request, z *Zone) {
	name, ok := a.zoneName(w, z, r.PathValue("host"))
	if !ok {
		return
	}
	out := []hostRecord{}
	exists := false
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		res := z.Lookup(name, qtype)
		exists = exists || res.Exists
		for _, rr := range res.Answer {
			if ip := addressOf(rr); ip != "" {
				out = append(out, hostRecord{Host: name, IP: ip})
			}
		}
	}
	if len(out) == 0 {
		notFound(w, name, exists, "A or AAAA")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// getServices answers the SRV records of a name as Mesos-DNS's
// RestService: the service as the request gave it, and per record a row for
// the first A and one for the first AAAA record of its target (a target
// without one gives no row).
func (a *httpAPI) getServices(w http.ResponseWriter, r *http.Request, z *Zone) {
	raw := r.PathValue("service")
	name, ok := a.zoneName(w, z, raw)
	if !ok {
		return
	}
	res := z.Lookup(name, dns.TypeSRV)
	out := []serviceRecord{}
	for _, rr := range res.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			continue
		}
		for _, ip := range targetAddresses(z, srv.Target) {
			out = append(out, serviceRecord{Service: raw, Host: srv.Target, IP: ip, Port: strconv.Itoa(int(srv.Port))})
		}
	}
	if len(out) == 0 {
		notFound(w, name, res.Exists, "SRV")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// targetAddresses is the first A and the first AAAA record of an SRV
// target, those it has.
func targetAddresses(z *Zone, target string) []string {
	var out []string
	lower := strings.ToLower(target)
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		for _, rr := range z.Lookup(lower, qtype).Answer {
			if ip := addressOf(rr); ip != "" {
				out = append(out, ip)
				break
			}
		}
	}
	return out
}

// addressOf is the address of an A or AAAA record, "" for other types.
func addressOf(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.A:
		return v.A.String()
	case *dns.AAAA:
		return v.AAAA.String()
	}
	return ""
}

// zoneName turns a name from a URL into the zone's form (lowercase, fully
// qualified), or answers 400/404 and reports false.
func (a *httpAPI) zoneName(w http.ResponseWriter, z *Zone, raw string) (string, bool) {
	name, err := canonicalName(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	if !z.InZone(name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not in the domain %s: this API answers only the cluster's names", name, dns.Fqdn(a.cfg.Domain)))
		return "", false
	}
	return name, true
}

// canonicalName accepts a name with or without the trailing dot, in any
// letter case.
func canonicalName(raw string) (string, error) {
	name := strings.ToLower(strings.TrimSpace(raw))
	if name == "" || name == "." {
		return "", fmt.Errorf("empty name")
	}
	name = dns.Fqdn(name)
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 254 {
		return "", fmt.Errorf("%q is not a valid domain name", raw)
	}
	return name, nil
}

func notFound(w http.ResponseWriter, name string, exists bool, types string) {
	if exists {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s has no %s records", name, types))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such name: %s", name))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client left
}

// writeError answers with Marathon's error shape, {"message": ...}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Message string `json:"message"`
	}{msg})
}
