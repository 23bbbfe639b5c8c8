package integration

import (
	"testing"
)

// TestOOMKilledTaskFailsWithTheMemoryReasonAndIsReplaced: an app whose
// process allocates past its mem is killed by the kernel; the user sees
// TASK_FAILED with Mesos's "Memory limit exceeded" message on the event
// stream, and the master launches a replacement (issue 15).
func TestOOMKilledTaskFailsWithTheMemoryReasonAndIsReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master and an agent")
	}
	c := startCluster(t, clusterOptions{agents: 1})
	js := startEventsCLI(t, "--json", "--master", c.api)
	js.waitLines(c, 1, "the stream attached", contains("event_stream_attached"))

	// The shell holds ~100 MB in a variable; the app asked for 32 MB.
	c.mustDo("POST", "/v2/apps", `{"id": "/hog", "instances": 1, "cpus": 0.5, "mem": 32, "backoffSeconds": 0.2,
		"cmd": "x=$(head -c 100000000 /dev/zero | tr \"\\0\" a); sleep 600"}`, 201, nil)
	js.waitLines(c, 1, "a TASK_FAILED with the memory limitation",
		contains(`"appId":"/hog"`, `"taskStatus":"TASK_FAILED"`, `Memory limit exceeded: Requested: 32MB Maximum Used: `))
	// Replaced: a second task starts (and fails the same way).
	js.waitLines(c, 2, "a replacement launched", contains(`"appId":"/hog"`, `"taskStatus":"TASK_RUNNING"`))
}
