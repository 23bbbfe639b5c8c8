package dnsserver

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/miekg/dns"
)

// axfrJSON is Mesos-DNS's /v1/axfr shape (its models.AXFR): the zone's
// parameters and its records as name -> values, with "host:port" values
// for SRV. PTRs is ours: Mesos-DNS has none.
type axfrJSON struct {
	TTL            int32
	Serial         uint32
	RefreshSeconds int
	Mname          string
	Rname          string
	Domain         string
	Records        axfrRecords
}

type axfrRecords struct {
	As    map[string][]string
	AAAAs map[string][]string
	SRVs  map[string][]string
	PTRs  map[string][]string
}

// getAXFR exports every record: as Mesos-DNS's JSON, or with ?format=zone
// as RFC 1035 zone-file text that an authoritative server (knotd, NSD,
// BIND) loads as it is; the DNS benchmark serves the same records that way.
func (a *httpAPI) getAXFR(w http.ResponseWriter, r *http.Request, z *Zone) {
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		writeJSON(w, http.StatusOK, a.axfrJSON(z))
	case "zone":
		a.writeZoneFile(w, z)
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want json or zone", f))
	}
}

func (a *httpAPI) axfrJSON(z *Zone) axfrJSON {
	out := axfrJSON{
		TTL:    int32(a.cfg.TTL),
		Domain: a.cfg.Domain,
		Records: axfrRecords{
			As: map[string][]string{}, AAAAs: map[string][]string{},
			SRVs: map[string][]string{}, PTRs: map[string][]string{},
		},
	}
	if soa := z.SOA(); soa != nil {
		out.Serial, out.Mname, out.Rname = soa.Serial, soa.Ns, soa.Mbox
		// Mesos-DNS's RefreshSeconds is how often secondaries should
		// poll; the SOA's refresh says the same.
		out.RefreshSeconds = int(soa.Refresh)
	}
	for _, rr := range z.Records() {
		name := rr.Header().Name
		switch v := rr.(type) {
		case *dns.A:
			out.Records.As[name] = append(out.Records.As[name], v.A.String())
		case *dns.AAAA:
			out.Records.AAAAs[name] = append(out.Records.AAAAs[name], v.AAAA.String())
		case *dns.SRV:
			out.Records.SRVs[name] = append(out.Records.SRVs[name], net.JoinHostPort(v.Target, strconv.Itoa(int(v.Port))))
		case *dns.PTR:
			out.Records.PTRs[name] = append(out.Records.PTRs[name], v.Ptr)
		}
	}
	return out
}

// writeZoneFile writes the domain's records as a zone file, SOA first.
// Reverse (PTR) records belong to in-addr.arpa and ip6.arpa, not to this
// zone: a server loading the file would reject them as out of zone, so
// they are left out.
func (a *httpAPI) writeZoneFile(w http.ResponseWriter, z *Zone) {
	origin := dns.Fqdn(a.cfg.Domain)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	bw := bufio.NewWriterSize(w, 64<<10)
	serial := uint32(0)
	if soa := z.SOA(); soa != nil {
		serial = soa.Serial
	}
	fmt.Fprintf(bw, "; zone %s, serial %d, exported by atoll-dns\n$ORIGIN %s\n$TTL %d\n", origin, serial, origin, a.cfg.TTL)
	for _, rr := range z.Records() {
		if !dns.IsSubDomain(origin, rr.Header().Name) {
			continue
		}
		bw.WriteString(rr.String())
		bw.WriteByte('\n')
	}
	_ = bw.Flush() // a failed write means the client left
}
