package dnsserver

import (
	"cmp"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// /v1/enumerate in Mesos-DNS's shape (its records.EnumerationData):
// frameworks -> tasks -> records {name, host, rtype}, where host is the
// record's value ("ip", or "target:port" for SRV), one entry per serving
// task, named after its Mesos task name ("web.shop" for /shop/web).
//
// Mesos-DNS lists a record under the task that first inserted it: records
// that tasks share (web.shop.marathon.mesos on an agent with two of them)
// appear under one task only. atoll does the same: a task's own records are
// those of its canonical names (they carry the hash of its id) and the SRV
// records that point to them; a shared A record goes to the first task, in
// id order, with that address in its own records. PTR records, which
// Mesos-DNS does not have, are left out.
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
		fw.Tasks = append(fw.Tasks, enumApp(z, appID, e)...)
	})
	slices.SortFunc(fw.Tasks, func(x, y enumTask) int {
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.ID, y.ID))
	})
	writeJSON(w, http.StatusOK, enumData{Frameworks: []enumFramework{fw}})
}

// enumApp is the enumeration entries of an app's serving tasks.
func enumApp(z *Zone, appID string, e *appEntry) []enumTask {
	if len(e.canon) == 0 {
		return nil // no serving task
	}
	names := appendStandard(z.cfg, slices.Clone(e.extra), e.task)
	z.canonNames(e, func(name string, _ []rec) { names = append(names, name) })
	slices.Sort(names)
	names = slices.Compact(names) // two tasks can share a canonical name
	var recs []enumRecord
	for _, name := range names {
		for _, rr := range z.Lookup(name, dns.TypeANY).Answer {
			if host := enumHost(rr); host != "" && rr.Header().Rrtype != dns.TypePTR {
				recs = append(recs, enumRecord{Name: name, Host: host, Rtype: dns.TypeToString[rr.Header().Rrtype]})
			}
		}
	}
	name := taskName(appID)
	taken := make([]bool, len(recs))
	var out []enumTask
	for _, id := range e.tasks {
		mark := "-" + taskHash(id) + "-"
		own := func(r enumRecord) bool {
			if r.Rtype == "SRV" {
				return strings.Contains(r.Host, mark) // the target
			}
			return strings.Contains(r.Name, mark)
		}
		t := enumTask{Name: name, ID: id, Records: []enumRecord{}}
		addrs := map[string]bool{}
		for i, r := range recs {
			if !taken[i] && own(r) {
				taken[i] = true
				t.Records = append(t.Records, r)
				if r.Rtype != "SRV" {
					addrs[r.Host] = true
				}
			}
		}
		for i, r := range recs {
			if !taken[i] && r.Rtype != "SRV" && addrs[r.Host] {
				taken[i] = true
				t.Records = append(t.Records, r)
			}
		}
		if len(t.Records) > 0 {
			slices.SortFunc(t.Records, func(x, y enumRecord) int {
				return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Host, y.Host))
			})
			out = append(out, t)
		}
	}
	return out
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
