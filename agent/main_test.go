package agent

import (
	"os"
	"testing"

	"github.com/atollhq/atoll/internal/startgate"
	"github.com/atollhq/atoll/internal/testvm"
)

// TestMain lets this test binary be the tasks' start gate too: the agent
// under test re-executes itself (/proc/self/exe) for every isolated task.
// It is also the /init of the VM TestIsolationOnCgroupV2InAVM boots.
func TestMain(m *testing.M) {
	testvm.Main()
	startgate.Main()
	os.Exit(m.Run())
}
