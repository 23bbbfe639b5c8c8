package master

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/atollhq/atoll/events"
)

// What a batch tells agents once it is durable goes out grouped by agent:
// one request with all of an agent's launches (events.LaunchBatch), one
// with its kills (events.KillBatch), where each task used to have a
// request, a goroutine and a reply of its own. A reconcile pass of 1,000
// launches on 100 agents is 100 requests.

// maxLaunchesPerRequest bounds a launch batch: the agent starts its tasks
// one at a time before it answers, and its answer (an ack per task, with
// the reason of each refusal) must fit in one NATS message.
const maxLaunchesPerRequest = 500

// maxKillsPerRequest bounds a kill batch; kills are acked at once.
const maxKillsPerRequest = 1000

// perTaskAllowance is how much longer than requestTimeout a batch may take
// per task in it: the agent starts a batch's processes one after another.
const perTaskAllowance = 20 * time.Millisecond

// outbox is the launches and kills one batch releases, by agent.
type outbox struct {
	nodes  []string // node tokens, in the order first named
	byNode map[string]*agentOrders
}

// agentOrders is what one agent is to be told.
type agentOrders struct {
	node     string // as the state names it; subjects take its token
	launches []events.LaunchRequest
	kills    []events.KillRequest
	// drained are kills of tasks that served: they go together once the
	// last of them has drained (KillDrainDelay after its TASK_KILLING).
	drained   []events.KillRequest
	drainWait time.Duration
}

func (o *outbox) empty() bool { return len(o.nodes) == 0 }

func (o *outbox) orders(node string) *agentOrders {
	token := events.NodeToken(node)
	if o.byNode == nil {
		o.byNode = map[string]*agentOrders{}
	}
	ao, ok := o.byNode[token]
	if !ok {
		ao = &agentOrders{node: node}
		o.byNode[token] = ao
		o.nodes = append(o.nodes, token)
	}
	return ao
}

// launch queues a launch for node's agent.
func (o *outbox) launch(node string, req events.LaunchRequest) {
	ao := o.orders(node)
	ao.launches = append(ao.launches, req)
}

// kill queues a kill for node's agent, to go after wait (a draining task).
func (o *outbox) kill(node string, req events.KillRequest, wait time.Duration) {
	ao := o.orders(node)
	if wait <= 0 {
		ao.kills = append(ao.kills, req)
		return
	}
	ao.drained = append(ao.drained, req)
	ao.drainWait = max(ao.drainWait, wait)
}

// batchBody is one request's body and the items it carries.
type batchBody[T any] struct {
	body  []byte
	items []T
}

// encodeBatches encodes items as messages {"<key>":[...]} of at most
// maxItems items and maxBytes bytes each. An item that alone is larger
// than maxBytes goes alone: sending it fails, and says so.
func encodeBatches[T any](key string, items []T, maxItems, maxBytes int) ([]batchBody[T], error) {
	head := []byte(`{"` + key + `":[`)
	const tail = "]}"
	var out []batchBody[T]
	var buf bytes.Buffer
	start := 0
	flush := func(end int) {
		buf.WriteString(tail)
		out = append(out, batchBody[T]{body: bytes.Clone(buf.Bytes()), items: items[start:end]})
		buf.Reset()
		start = end
	}
	for i, it := range items {
		data, err := json.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("encode %s %d: %w", key, i, err)
		}
		if buf.Len() > 0 && (i-start >= maxItems || buf.Len()+1+len(data)+len(tail) > maxBytes) {
			flush(i)
		}
		if buf.Len() == 0 {
			buf.Write(head)
		} else {
			buf.WriteByte(',')
		}
		buf.Write(data)
	}
	if buf.Len() > 0 {
		flush(len(items))
	}
	return out, nil
}
