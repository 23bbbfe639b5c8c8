package master

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/atollhq/atoll/events"
)

// A heartbeat decodes to what json.Unmarshal makes of it, whatever its
// spelling: the shape agents send and every other.
func TestDecodeHeartbeatAsUnmarshal(t *testing.T) {
	sent, _ := json.Marshal(events.Heartbeat{AgentID: "a1-S0", Tasks: []events.TaskReport{
		{TaskID: "web.1", AppID: "/web", State: events.TaskRunning},
		{TaskID: "web.2", AppID: "/web", State: events.TaskFailed, Message: "exit 1"},
	}})
	escaped, _ := json.Marshal(events.Heartbeat{AgentID: "a1-S0", Tasks: []events.TaskReport{
		{TaskID: "web.1", AppID: "/web", State: events.TaskFailed, Message: `said "<no>" \ héllo`},
	}})
	for _, in := range []string{
		string(sent),
		string(escaped),
		`{"agentId":"a1-S0","tasks":[]}`,
		`{"agentId":"a1-S0","tasks":null}`,
		`{"agentId":"a1-S0","tasks":[{"taskId":"t","appId":"/a","state":"TASK_RUNNING","statistics":{"timestamp":1.5,"cpus_limit":0.1,"cpus_user_time_secs":2,"cpus_system_time_secs":0.5,"mem_total_bytes":1048576,"mem_limit_bytes":33554432}}]}`,
		`{"agentId":"","tasks":[{"taskId":"t","appId":"/a","state":"TASK_RUNNING","message":""}]}`,
		`{ "agentId": "a1-S0", "tasks": [ {"taskId": "t", "appId": "/a", "state": "TASK_RUNNING"} ] }`,
		`{"tasks":[{"state":"TASK_RUNNING","taskId":"t","appId":"/a"}],"agentId":"a1-S0"}`,
		`{"agentId":"a1-S0","tasks":[{"taskId":"t","appId":"/a","state":"TASK_RUNNING","extra":1}]}`,
		`{"agentId":"a1-S0"}`,
		`{"agentId":"a1-S0","tasks":[{"taskId":"t","appId":"/a","state":"TASK_RUNNING"},]}`,
		`{"agentId":"a1-S0","tasks":[]}x`,
		`{"agentId":"a1-S0","tasks":[{"taskId":"t","appId":"/a","state":"TASK_RUNNING"}`,
		`{"agentId":"a\u0031","tasks":[]}`,
		`not json`,
	} {
		var want events.Heartbeat
		wantErr := json.Unmarshal([]byte(in), &want)
		got, err := decodeHeartbeat([]byte(in))
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%s: err %v, json.Unmarshal's %v", in, err, wantErr)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", in, got, want)
		}
	}
}
