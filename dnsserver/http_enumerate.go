package dnsserver

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// /v1/enumerate in Mesos-DNS's shape (its records.EnumerationData):
// frameworks -> tasks -> records {name, host, rtype}, where host is the
// record's value ("ip", or "target:port" for SRV).
//
// One difference: Mesos-DNS lists one entry per task, and atoll one per
// app, whose id is the app id. Tasks of an app share the app's names and,
// on one agent, its addresses, so their records cannot be told apart; an
// entry per task would repeat or split them arbitrarily.
type enumData struct {
	Frameworks []enumFramework `json:"frameworks"`
}

type enumFramework struct {
	Tasks []enumTask `json:"tasks"`
	Name  string     `json:"name"`
}

type enumTask struct {
	Name    string       `json:"name"`
	ID      string       `json:"id"`
	Records []enumRecord `json:"records"`
}

type enumRecord struct {
	Name  string `json:"name"`
	Host  string `json:"host"`
	Rtype string `json:"rtype"`
}

func (a *httpAPI) getEnumerate(w http.ResponseWriter, _ *http.Request, z *Zone) {
	fw := enumFramework{Name: a.cfg.Framework, Tasks: []enumTask{}}
	z.apps.each(func(appID string, e *appEntry) {
		if len(e.names) == 0 {
			return // no serving task
		}
		t := enumTask{Name: taskName(appID), ID: appID, Records: []enumRecord{}}
		for _, name := range e.names {
			for _, rr := range z.Lookup(name, dns.TypeANY).Answer {
				if host := enumHost(rr); host != "" {
					t.Records = append(t.Records, enumRecord{Name: name, Host: host, Rtype: dns.TypeToString[rr.Header().Rrtype]})
				}
			}
		}
		fw.Tasks = append(fw.Tasks, t)
	})
	slices.SortFunc(fw.Tasks, func(x, y enumTask) int { return strings.Compare(x.ID, y.ID) })
	writeJSON(w, http.StatusOK, enumData{Frameworks: []enumFramework{fw}})
}

// enumHost is a record's value as Mesos-DNS writes it.
func enumHost(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.SRV:
		return net.JoinHostPort(v.Target, strconv.Itoa(int(v.Port)))
	case *dns.PTR:
		return v.Ptr
	}
	return addressOf(rr)
}
