package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreamUDPSize is the EDNS0 buffer we advertise upstream, whatever the
// client advertised to us. 1232 avoids IP fragmentation (DNS flag day 2020);
// larger answers come back with TC and are fetched whole over TCP. So the
// forwarder always obtains the complete answer, which is what the cache must
// hold: an answer cut to one client's small buffer would be wrong for the
// next client, and keying the cache by buffer size would split it for
// nothing. Truncating toward the client, by its own buffer size, is the
// server's job, as for its own zone's answers. It is also the size we
// advertise in replies that carry an OPT.
const upstreamUDPSize = 1232

// Forwarder answers names outside the cluster's domain by asking the
// upstream resolvers, with a small cache in front. It is safe for
// concurrent use.
type Forwarder struct {
	resolvers []string
	timeout   time.Duration
	metrics   *Metrics // may be nil
	cache     *fwdCache
	// last is the index of the resolver that answered last; the next query
	// starts there, so a dead first resolver costs one timeout, not one per
	// query.
	last atomic.Uint32
}

// NewForwarder forwards to resolvers ("host:port"), trying each for at most
// timeout per attempt (DefaultForwardTimeout if timeout <= 0). metrics may
// be nil.
func NewForwarder(resolvers []string, timeout time.Duration, metrics *Metrics) *Forwarder {
	if timeout <= 0 {
		timeout = DefaultForwardTimeout
	}
	return &Forwarder{
		resolvers: append([]string(nil), resolvers...),
		timeout:   timeout,
		metrics:   metrics,
		cache:     newFwdCache(fwdCacheSize, nil),
	}
}

// Forward answers req, a query with one question, from the cache when it
// holds a fresh answer, and otherwise from the first upstream resolver that
// gives a good one (NOERROR or NXDOMAIN). Resolvers are tried in order,
// starting from the last one that answered, each over UDP and, when the UDP
// answer is truncated, again over TCP; a timeout, network error, SERVFAIL,
// REFUSED or any other rcode moves on to the next. If all fail, the last
// error is returned and the caller should answer SERVFAIL.
//
// The reply carries req's ID, flags and question (letter case included) and
// an OPT record exactly when req has one. It is not truncated to req's
// buffer size: the caller truncates UDP replies (dns.Msg.Truncate).
// Every exchange finishes, or is abandoned on ctx's end, before Forward
// returns: no goroutine outlives the call.
func (f *Forwarder) Forward(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	if req == nil || len(req.Question) != 1 {
		n := 0
		if req != nil {
			n = len(req.Question)
		}
		return nil, fmt.Errorf("forward: a query needs exactly one question, this one has %d", n)
	}
	if m := f.cache.get(req); m != nil {
		f.count("cached")
		return fwdReply(req, m), nil
	}
	start := time.Now()
	resp, err := f.ask(ctx, req)
	if f.metrics != nil {
		f.metrics.ForwardSeconds.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		f.count("failed")
		return nil, err
	}
	f.cache.put(req, resp)
	f.count("answered")
	return fwdReply(req, resp), nil
}

// ask tries the resolvers in turn and returns the first good answer.
func (f *Forwarder) ask(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	q := req.Question[0]
	name := fmt.Sprintf("%s %s", q.Name, dns.TypeToString[q.Qtype])
	n := len(f.resolvers)
	if n == 0 {
		return nil, fmt.Errorf("forward %s: no upstream resolvers configured", name)
	}
	m := fwdUpstreamQuery(req)
	start := int(f.last.Load()) % n
	var lastErr error
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("forward %s: %w", name, err)
		}
		idx := (start + i) % n
		addr := f.resolvers[idx]
		resp, err := f.try(ctx, m, addr)
		if err == nil {
			f.last.Store(uint32(idx))
			return resp, nil
		}
		lastErr = fmt.Errorf("forward %s to %s: %w", name, addr, err)
	}
	return nil, lastErr
}

// try asks one resolver: UDP, then TCP if the UDP answer was truncated. It
// returns an error for anything but a whole NOERROR or NXDOMAIN answer.
func (f *Forwarder) try(ctx context.Context, m *dns.Msg, addr string) (*dns.Msg, error) {
	resp, err := f.exchange(ctx, "udp", m, addr)
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	if resp.Truncated {
		if resp, err = f.exchange(ctx, "tcp", m, addr); err != nil {
			return nil, fmt.Errorf("tcp after truncated udp answer: %w", err)
		}
		if resp.Truncated {
			return nil, errors.New("tcp answer is truncated")
		}
	}
	if err := fwdCheckAnswer(m, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// exchange sends m to addr over network and reads the answer, within the
// per-try timeout and ctx. dns.Client honours only ctx's deadline, not its
// cancellation, so a cancellation sets the connection's deadline to the past
// to end the read at once; that callback is waited for, so it cannot outlive
// the exchange.
func (f *Forwarder) exchange(ctx context.Context, network string, m *dns.Msg, addr string) (*dns.Msg, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: f.timeout}
	conn, err := c.DialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-done
		}
	}()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	switch {
	case err == nil:
		return resp, nil
	case parent.Err() != nil:
		// The caller gave up (or its deadline passed): say that rather
		// than the i/o timeout it caused.
		return nil, fmt.Errorf("%w (%v)", parent.Err(), err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("no answer within %v: %w", f.timeout, err)
	default:
		return nil, err
	}
}

// fwdCheckAnswer accepts a NOERROR or NXDOMAIN answer to question m.
func fwdCheckAnswer(m, resp *dns.Msg) error {
	// A reply for another question (a confused or spoofing upstream) must
	// not reach the cache.
	q := m.Question[0]
	if len(resp.Question) != 1 || resp.Question[0].Qtype != q.Qtype ||
		resp.Question[0].Qclass != q.Qclass || !strings.EqualFold(resp.Question[0].Name, q.Name) {
		return fmt.Errorf("answer is for another question: %v", resp.Question)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return nil
	default:
		return fmt.Errorf("upstream answered %s", dns.RcodeToString[resp.Rcode])
	}
}

// fwdUpstreamQuery is the query sent upstream for req: a fresh random ID
// (the client's may be predictable), recursion desired, the client's CD and
// DO bits (they are part of the cache key) and our EDNS0 buffer size.
func fwdUpstreamQuery(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.Id = dns.Id()
	m.RecursionDesired = true
	m.CheckingDisabled = req.CheckingDisabled
	m.Question = []dns.Question{req.Question[0]}
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	m.SetEdns0(upstreamUDPSize, do)
	return m
}

// fwdReply turns resp, a message of our own (fresh from upstream or a
// cache copy), into the reply to req.
func fwdReply(req, resp *dns.Msg) *dns.Msg {
	resp.Id = req.Id
	resp.Response = true
	resp.Opcode = req.Opcode
	resp.RecursionDesired = req.RecursionDesired
	resp.CheckingDisabled = req.CheckingDisabled
	// We relay; even an upstream's authoritative answer is not ours.
	resp.Authoritative = false
	resp.Question = append([]dns.Question(nil), req.Question...)
	resp.Compress = true
	fwdStripOPT(resp)
	// RFC 6891: an OPT in the reply only if the query had one.
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(upstreamUDPSize, opt.Do())
	}
	return resp
}

func (f *Forwarder) count(outcome string) {
	if f.metrics != nil {
		f.metrics.Forwarded.WithLabelValues(outcome).Inc()
	}
}
