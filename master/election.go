package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

const (
	// candidatePrefix is Mesos's: Mesos-DNS and mesos-go's detector take
	// the lowest json.info_ child for the leader.
	candidatePrefix = "json.info_"
	// campaignRetry is the pause between terms, so an unreachable
	// ZooKeeper is not hammered.
	campaignRetry = 500 * time.Millisecond
)

// campaign runs terms until ctx ends. A term is one ZooKeeper session:
// this master is a candidate and leads while its node is the lowest. A
// disconnect stops all leader work at once, since a leader cannot know
// that it still leads meanwhile; if the client gets the same session back
// from another server (within the session timeout nobody else can have
// taken over: our node is still there), the master leads again, in a new
// epoch. An expired session or a fenced write ends the term; the next one
// starts afresh with a new session.
func (m *Master) campaign(ctx context.Context) error {
	for {
		err := m.term(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errAbdicated) {
			m.log.Info("stepped down; campaigning again behind the other masters")
		} else {
			m.log.Warn("zookeeper term ended; campaigning again", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(campaignRetry):
		}
	}
}

// errAbdicated ends a term at DELETE /v2/leader (Abdicate).
var errAbdicated = errors.New("leadership abdicated (DELETE /v2/leader)")

// Abdicate makes the leader step down, as Marathon's DELETE /v2/leader
// does: its term ends and its candidacy with it, so the next master in
// line takes over, and this one campaigns again behind the others. It
// says whether this master was leading a term it could end.
func (m *Master) Abdicate() bool {
	end := m.abdicate.Load()
	if end == nil || !m.Leading() {
		return false
	}
	(*end)(errAbdicated)
	return true
}

// errZKDisconnected ends a leadership (not the term) when the client lost
// its server; the session may still come back.
var errZKDisconnected = errors.New("zookeeper disconnected")

// term is one session's candidacy; it returns why it ended.
func (m *Master) term(parent context.Context) error {
	z := m.cfg.ZK
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)

	var hadSession, disconnected atomic.Bool
	ready := make(chan struct{})
	var readyOnce sync.Once
	// stopLeading ends the current leadership, if any; reconnected says
	// the session is back after a disconnect.
	var stopLeading atomic.Pointer[context.CancelCauseFunc]
	reconnected := make(chan struct{}, 1)
	// Called on go-zookeeper's own goroutine: it must not block.
	onEvent := func(ev zk.Event) {
		if ev.Type != zk.EventSession {
			return
		}
		switch ev.State {
		case zk.StateHasSession:
			hadSession.Store(true)
			readyOnce.Do(func() { close(ready) })
			if disconnected.Swap(false) {
				select {
				case reconnected <- struct{}{}:
				default:
				}
			}
		case zk.StateDisconnected:
			if hadSession.Load() {
				disconnected.Store(true)
				if stop := stopLeading.Load(); stop != nil {
					(*stop)(errZKDisconnected)
				}
			}
		case zk.StateExpired:
			if hadSession.Load() {
				cancel(fmt.Errorf("zookeeper session %s", ev.State))
			}
		case zk.StateAuthFailed:
			cancel(errors.New("zookeeper authentication failed"))
		}
	}
	conn, _, err := zk.Connect(z.Servers, z.SessionTimeout,
		zk.WithEventCallback(onEvent), zk.WithLogger(zkLogger{m.log}), zk.WithLogInfo(false))
	if err != nil {
		return fmt.Errorf("zk connect: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil)
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		// Closing fails every request in flight at once, so a commit
		// blocked on ZooKeeper cannot hold up the revoke.
		conn.Close()
	}()

	select {
	case <-ready:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(max(z.SessionTimeout, time.Second)):
		return fmt.Errorf("no zookeeper session with %s", strings.Join(z.Servers, ","))
	}
	electionACL, _ := z.acls()
	if z.Auth != "" {
		if err := conn.AddAuth("digest", []byte(z.Auth)); err != nil {
			return fmt.Errorf("zk auth: %w", err)
		}
	}
	if err := ensurePath(conn, z.Path, electionACL); err != nil {
		return fmt.Errorf("zk: create %s: %w", z.Path, err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); m.watchCandidates(ctx, conn, z.Path) }()
	self, err := json.Marshal(m.selfInfo())
	if err != nil {
		return fmt.Errorf("zk: encode master info: %w", err)
	}
	node, err := conn.Create(z.Path+"/"+candidatePrefix, self, zk.FlagEphemeral|zk.FlagSequence, electionACL)
	if err != nil {
		return fmt.Errorf("zk: create candidate: %w", err)
	}
	name := path.Base(node)
	m.log.Info("zookeeper candidate", "node", node, "session", fmt.Sprintf("%#x", conn.SessionID()))
	if err := m.dropEarlierSelves(conn, z.Path, name); err != nil {
		return err
	}

	for {
		listed := time.Now()
		names, _, err := conn.Children(z.Path)
		if err != nil {
			return fmt.Errorf("zk: list candidates: %w", err)
		}
		cands := candidates(names)
		pos := slices.Index(cands, name)
		if pos < 0 {
			return fmt.Errorf("zk: candidate %s vanished", node)
		}
		if pos == 0 {
			leadCtx, stop := context.WithCancelCause(ctx)
			stopLeading.Store(&stop)
			if disconnected.Load() { // lost before stopLeading was set
				stop(errZKDisconnected)
			}
			// Abdicating ends the term: closing the session deletes
			// our candidate at once, so the next one leads.
			m.abdicate.Store(&cancel)
			err := m.leadTerm(leadCtx, conn, cancel, node, listed)
			m.abdicate.Store(nil)
			stopLeading.Store(nil)
			stop(nil)
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if !errors.Is(err, errZKDisconnected) {
				return err
			}
			m.log.Warn("zookeeper disconnected; not leading until the session is back", "node", node)
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-reconnected:
				m.log.Info("zookeeper session back", "node", node)
			}
			continue // our node lives with the session: see where it stands
		}
		// Standby: keep the leader's info, wake when it or our
		// predecessor goes. Only the predecessor decides when we lead,
		// so one leaving wakes one successor, not all.
		data, _, lowCh, err := conn.GetW(z.Path + "/" + cands[0])
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("zk: read leader %s: %w", cands[0], err)
		}
		m.followLeader(cands[0], data)
		var predCh <-chan zk.Event // nil when the leader is the predecessor
		if pos > 1 {
			ok, _, ch, err := conn.ExistsW(z.Path + "/" + cands[pos-1])
			if err != nil {
				return fmt.Errorf("zk: watch %s: %w", cands[pos-1], err)
			}
			if !ok {
				continue
			}
			predCh = ch
		}
		select {
		case <-ctx.Done():
			m.leaderInfo.Store(nil)
			return context.Cause(ctx)
		case <-lowCh:
		case <-predCh:
		}
	}
}

// leadTerm leads until the term ends.
func (m *Master) leadTerm(ctx context.Context, conn *zk.Conn, end context.CancelCauseFunc, node string, elected time.Time) error {
	m.log.Info("elected leader", "node", node)
	m.zkStore.bind(conn, end)
	defer m.zkStore.bind(nil, nil)
	// The candidate list that made this master leader was read just now:
	// that read starts the lease.
	m.extendLease(elected)
	defer m.lease.Store(nil)
	leaseCtx, stopLease := context.WithCancel(ctx)
	leaseDone := make(chan struct{})
	go func() { defer close(leaseDone); m.renewLease(leaseCtx, conn, node) }()
	defer func() { stopLease(); <-leaseDone }()
	if err := m.lead(ctx); err != nil {
		m.log.Error("leadership failed", "err", err)
		return err
	}
	cause := context.Cause(ctx)
	if !errors.Is(cause, context.Canceled) {
		m.log.Warn("leadership lost", "cause", cause)
	}
	return cause
}

// dropEarlierSelves deletes the candidates of this master's earlier
// sessions. A term ends by closing its session, but one closed while
// ZooKeeper was unreachable lives on until it expires, and its node,
// lower than ours, would have this master follow itself until then. Only
// this process writes its ID, one term at a time, so such a node is dead.
func (m *Master) dropEarlierSelves(conn *zk.Conn, dir, own string) error {
	names, _, err := conn.Children(dir)
	if err != nil {
		return fmt.Errorf("zk: list candidates: %w", err)
	}
	for _, c := range candidates(names) {
		if c == own {
			return nil
		}
		data, _, err := conn.Get(dir + "/" + c)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("zk: read candidate %s: %w", c, err)
		}
		var info MasterInfo
		if json.Unmarshal(data, &info) != nil || info.ID != m.cfg.ID {
			continue
		}
		if err := conn.Delete(dir+"/"+c, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("zk: remove earlier candidate %s: %w", c, err)
		}
		m.log.Info("removed the candidate of an earlier session", "node", c)
	}
	return nil
}

// followLeader records the leader a standby forwards to.
func (m *Master) followLeader(name string, data []byte) {
	var info MasterInfo
	if err := json.Unmarshal(data, &info); err != nil {
		m.log.Warn("undecodable leader info", "node", name, "err", err)
		m.leaderInfo.Store(nil)
		return
	}
	if old := m.leaderInfo.Load(); old == nil || *old != info {
		m.log.Info("following leader", "node", name, "leader", info.HostPort(), "id", info.ID)
	}
	m.leaderInfo.Store(&info)
}

// candidates are the json.info_ names among children, lowest sequence
// first.
func candidates(children []string) []string {
	var out []string
	for _, c := range children {
		if _, ok := candidateSeq(c); ok {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		sa, _ := candidateSeq(a)
		sb, _ := candidateSeq(b)
		return sa - sb
	})
	return out
}

func candidateSeq(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, candidatePrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// zkLogger sends go-zookeeper's chatter to debug.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug("zookeeper: " + fmt.Sprintf(format, args...))
}
