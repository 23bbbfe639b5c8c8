package master

import (
	"context"
	"encoding/json"
	"time"

	"github.com/go-zookeeper/zk"
)

// MasterEntry is one master of the cluster as /master/state lists it
// ("masters", atoll's own field: Mesos lists none): its MasterInfo and
// whether it leads.
type MasterEntry struct {
	MasterInfo
	Leader bool `json:"leader"`
}

// Masters lists the masters this one knows of, the leader first: every
// election candidate with ZooKeeper, or itself when it leads alone.
func (m *Master) Masters() []MasterEntry {
	if m.cfg.ZK == nil {
		if !m.Leading() {
			return nil
		}
		return []MasterEntry{{MasterInfo: m.selfInfo(), Leader: true}}
	}
	p := m.candidateInfos.Load()
	if p == nil {
		return nil
	}
	out := make([]MasterEntry, len(*p))
	for i, info := range *p {
		out[i] = MasterEntry{MasterInfo: info, Leader: i == 0}
	}
	return out
}

// watchCandidates keeps candidateInfos, every candidate's MasterInfo in
// election order, for as long as the term's session lives.
func (m *Master) watchCandidates(ctx context.Context, conn *zk.Conn, dir string) {
	defer m.candidateInfos.Store(nil)
	for {
		names, _, changed, err := conn.ChildrenW(dir)
		if err == nil {
			var infos []MasterInfo
			for _, c := range candidates(names) {
				data, _, err := conn.Get(dir + "/" + c)
				if err != nil {
					continue // gone meanwhile: the watch fires again
				}
				var info MasterInfo
				if json.Unmarshal(data, &info) == nil {
					infos = append(infos, info)
				}
			}
			m.candidateInfos.Store(&infos)
		}
		var retry <-chan time.Time // after an error, list again in a second
		if err != nil {
			changed, retry = nil, time.After(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retry:
		}
	}
}
