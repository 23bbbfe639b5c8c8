package master

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GET /v2/events: Marathon's event stream (Server-Sent Events).
//
// Each committed state event becomes zero or more Marathon events
// (sse_events.go), framed as
//
//	id: <epoch>-<seq>
//	event: <eventType>
//	data: <one-line JSON>
//
// The id is atoll's: Marathon has none. All Marathon events made from one
// committed event share its id and are written in one piece. The hub keeps
// the last sseRingSize committed events; a client that reconnects with
// Last-Event-ID gets every later event in order and then the live stream,
// or, when the id is older than the ring, from another epoch or unknown,
// one atoll "resync" event telling it to refetch /v2/apps?embed=apps.tasks
// (its id is the newest one, so the client may resume from there).
//
// The framing is written here on net/http rather than with r3labs/sse: its
// server numbers events itself (its replay log rewrites ids to its own
// counter, so "epoch-seq" ids cannot be resumed), has no per-client
// event_type filter, and its stream loop blocks on a full subscriber
// channel, so one slow client would hold up the leader.

// Defaults; a hub copies them when it is made, so tests may change a hub's
// own fields.
var (
	sseRingSize     = 10000
	sseClientBuffer = 1024
	sseHeartbeat    = 15 * time.Second
	// sseLeaderCheck is how often a stream checks that this master still
	// leads; it ends the stream when not (master stopped or deposed).
	sseLeaderCheck = time.Second
	// sseWriteTimeout bounds one write to a client.
	sseWriteTimeout = 30 * time.Second
)

// sseSnapshotURI is where a client that must resync refetches the state.
const sseSnapshotURI = "/v2/apps?embed=apps.tasks"

// sseFrame is one Marathon event, framed and ready to write.
type sseFrame struct {
	typ  string
	data []byte
}

type sseEntry struct {
	seq    uint64
	frames []sseFrame
}

type sseClient struct {
	filter  map[string]bool // empty: every type
	ch      chan []byte
	dropped chan struct{}
	once    sync.Once
}

func (c *sseClient) wants(typ string) bool { return len(c.filter) == 0 || c.filter[typ] }

func (c *sseClient) drop() { c.once.Do(func() { close(c.dropped) }) }

// sseHub fans committed events out to the connected streams.
type sseHub struct {
	ringSize     int
	clientBuffer int
	heartbeat    time.Duration
	leaderCheck  time.Duration
	now          func() time.Time

	mu      sync.Mutex
	epoch   uint64
	ring    []sseEntry // circular, len(ring) <= ringSize
	start   int        // index of the oldest entry
	clients map[*sseClient]struct{}
	drops   uint64
}

func newSSEHub(now func() time.Time) *sseHub {
	return &sseHub{
		ringSize: sseRingSize, clientBuffer: sseClientBuffer,
		heartbeat: sseHeartbeat, leaderCheck: sseLeaderCheck,
		now: now, clients: map[*sseClient]struct{}{},
	}
}

// sseID is the stream id of a committed event.
func sseID(epoch, seq uint64) string { return fmt.Sprintf("%d-%d", epoch, seq) }

func parseSSEID(s string) (epoch, seq uint64, ok bool) {
	a, b, found := strings.Cut(strings.TrimSpace(s), "-")
	if !found {
		return 0, 0, false
	}
	e, err1 := strconv.ParseUint(a, 10, 64)
	q, err2 := strconv.ParseUint(b, 10, 64)
	return e, q, err1 == nil && err2 == nil
}

// frame encodes one SSE event; id may be empty. v must marshal to JSON,
// which never contains a raw newline.
func frame(id, typ string, v any) sseFrame {
	var buf bytes.Buffer
	if id != "" {
		buf.WriteString("id: " + id + "\n")
	}
	buf.WriteString("event: " + typ + "\ndata: ")
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Our own views always encode; say so on the stream if not.
		buf.WriteString(`{"eventType":"` + typ + `","error":"encode"}` + "\n")
	}
	buf.WriteString("\n") // Encode ended the data line; this ends the event
	return sseFrame{typ: typ, data: buf.Bytes()}
}

func (h *sseHub) newest() (sseEntry, bool) {
	if len(h.ring) == 0 {
		return sseEntry{}, false
	}
	return h.ring[(h.start+len(h.ring)-1)%len(h.ring)], true
}

// publish records the Marathon events made from committed event
// (epoch, seq) and hands them to every client. It never blocks: a client
// whose buffer is full is dropped and reconnects with Last-Event-ID.
// Committed events with no Marathon counterpart are recorded too, so the
// ring stays contiguous.
func (h *sseHub) publish(epoch, seq uint64, frames []sseFrame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if epoch != h.epoch {
		h.epoch, h.ring, h.start = epoch, nil, 0
	}
	e := sseEntry{seq: seq, frames: frames}
	if len(h.ring) < h.ringSize {
		h.ring = append(h.ring, e)
	} else {
		h.ring[h.start] = e
		h.start = (h.start + 1) % len(h.ring)
	}
	if len(frames) == 0 {
		return
	}
	for c := range h.clients {
		h.sendLocked(c, frames)
	}
}

// notice hands frames that are not state (a sidecar's report) to every
// client. They carry no id and are not replayed: they describe a moment,
// and the state they concern is replayed on its own.
func (h *sseHub) notice(frames []sseFrame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		h.sendLocked(c, frames)
	}
}

func (h *sseHub) sendLocked(c *sseClient, frames []sseFrame) {
	msg := filtered(c, frames)
	if msg == nil {
		return
	}
	select {
	case c.ch <- msg:
	default:
		h.drops++
		delete(h.clients, c)
		c.drop()
	}
}

func filtered(c *sseClient, frames []sseFrame) []byte {
	var out []byte
	for _, f := range frames {
		if c.wants(f.typ) {
			out = append(out, f.data...)
		}
	}
	return out
}

// attach registers a client and returns what it gets first:
// event_stream_attached, then the replay after lastID or a resync.
// Registering and taking the replay under one lock means no event is
// missed or sent twice between them.
func (h *sseHub) attach(remote string, filter map[string]bool, lastID string) (*sseClient, []byte) {
	now := jsonTime(h.now())
	attached := frame("", "event_stream_attached", marathonStreamEvent{RemoteAddress: remote, EventType: "event_stream_attached", Timestamp: now})

	h.mu.Lock()
	defer h.mu.Unlock()
	c := &sseClient{filter: filter, ch: make(chan []byte, h.clientBuffer), dropped: make(chan struct{})}
	out := filtered(c, []sseFrame{attached})
	if lastID != "" {
		out = append(out, h.replayLocked(c, lastID, now)...)
	}
	// Marathon tells every stream, the new one included, that one attached.
	for other := range h.clients {
		h.sendLocked(other, []sseFrame{attached})
	}
	h.clients[c] = struct{}{}
	return c, out
}

func (h *sseHub) replayLocked(c *sseClient, lastID string, now jsonTime) []byte {
	epoch, seq, ok := parseSSEID(lastID)
	newest, have := h.newest()
	if ok && have && epoch == h.epoch && seq+1 >= h.ring[h.start].seq && seq <= newest.seq {
		var out []byte
		for i := range h.ring {
			e := h.ring[(h.start+i)%len(h.ring)]
			if e.seq > seq {
				out = append(out, filtered(c, e.frames)...)
			}
		}
		return out
	}
	ev := resyncEvent{
		EventType: "resync", Timestamp: now, LastEventID: lastID, Snapshot: sseSnapshotURI,
		Reason: "Last-Event-ID is not in the replay window (too old, another epoch, or unknown): refetch the snapshot, then follow this stream",
	}
	id := ""
	if have {
		id = sseID(h.epoch, newest.seq)
	}
	// resync is sent whatever the client's event_type filter.
	return frame(id, "resync", ev).data
}

func (h *sseHub) detach(c *sseClient, remote string) {
	now := jsonTime(h.now())
	detached := frame("", "event_stream_detached", marathonStreamEvent{RemoteAddress: remote, EventType: "event_stream_detached", Timestamp: now})
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	for other := range h.clients {
		h.sendLocked(other, []sseFrame{detached})
	}
}

func (h *sseHub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

type marathonStreamEvent struct {
	RemoteAddress string   `json:"remoteAddress"`
	EventType     string   `json:"eventType"`
	Timestamp     jsonTime `json:"timestamp"`
}

// resyncEvent is atoll's own event: the client's Last-Event-ID cannot be
// resumed. It refetches Snapshot and then applies the events that follow
// on this stream.
type resyncEvent struct {
	EventType   string   `json:"eventType"`
	Timestamp   jsonTime `json:"timestamp"`
	LastEventID string   `json:"lastEventId"`
	Snapshot    string   `json:"snapshot"`
	Reason      string   `json:"reason"`
}

// getEvents is GET /v2/events[?event_type=a&event_type=b].
func (m *Master) getEvents(w http.ResponseWriter, r *http.Request) {
	if _, ok := w.(http.Flusher); !ok {
		writeMessage(w, http.StatusInternalServerError, "streaming is not supported by this connection")
		return
	}
	filter := map[string]bool{}
	for _, t := range r.URL.Query()["event_type"] {
		for _, s := range strings.Split(t, ",") {
			if s = strings.TrimSpace(s); s != "" {
				filter[s] = true
			}
		}
	}
	remote := r.RemoteAddr
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	hub := m.sse
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}

	c, first := hub.attach(remote, filter, r.Header.Get("Last-Event-ID"))
	defer hub.detach(c, remote)

	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(first) {
		return
	}
	beat := time.NewTicker(hub.heartbeat)
	defer beat.Stop()
	check := time.NewTicker(hub.leaderCheck)
	defer check.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.dropped:
			// Too slow: the client reconnects with Last-Event-ID.
			return
		case <-check.C:
			if !m.Leading() {
				return
			}
		case <-beat.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		case msg := <-c.ch:
			// Take what else is queued, then write and flush once.
			for more := true; more; {
				select {
				case next := <-c.ch:
					msg = append(msg, next...)
				default:
					more = false
				}
			}
			if !write(msg) {
				return
			}
		}
	}
}
