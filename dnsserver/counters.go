package dnsserver

import (
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Query counting without a label lookup per query: the counters of every
// (type, rcode) pair are resolved once, workers count into a local array
// and add it to Prometheus after each batch. Types and rcodes outside the
// lists count as "OTHER", so no client can grow the label set.

var countedTypes = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeNS, dns.TypeSOA,
	dns.TypeANY, dns.TypeTXT, dns.TypeMX, dns.TypeCNAME, dns.TypeHTTPS,
}

var countedRcodes = [...]int{
	dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
	dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeBadVers,
}

const (
	numTypes  = len(countedTypes) + 1
	numRcodes = len(countedRcodes) + 1
)

func typeIndex(t uint16) int {
	for i, c := range countedTypes {
		if c == t {
			return i
		}
	}
	return numTypes - 1
}

func rcodeIndex(r int) int {
	for i, c := range countedRcodes {
		if c == r {
			return i
		}
	}
	return numRcodes - 1
}

type queryCounters struct {
	c [numTypes][numRcodes]prometheus.Counter
}

func newQueryCounters(m *Metrics) *queryCounters {
	qc := &queryCounters{}
	for i := range numTypes {
		tl := "OTHER"
		if i < len(countedTypes) {
			tl = dns.TypeToString[countedTypes[i]]
		}
		for j := range numRcodes {
			rl := "OTHER"
			if j < len(countedRcodes) {
				rl = dns.RcodeToString[countedRcodes[j]]
			}
			qc.c[i][j] = m.Queries.WithLabelValues(tl, rl)
		}
	}
	return qc
}

// localCounts is one worker's unflushed query counts.
type localCounts [numTypes][numRcodes]uint32

func (l *localCounts) add(qtype uint16, rcode int) {
	l[typeIndex(qtype)][rcodeIndex(rcode)]++
}

func (l *localCounts) flush(qc *queryCounters) {
	for i := range l {
		for j, n := range l[i] {
			if n != 0 {
				qc.c[i][j].Add(float64(n))
				l[i][j] = 0
			}
		}
	}
}
