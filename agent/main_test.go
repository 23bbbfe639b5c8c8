package agent

import (
	"os"
	"testing"

	"github.com/atollhq/atoll/internal/startgate"
)

// TestMain lets this test binary be the tasks' start gate too: the agent
// under test re-executes itself (/proc/self/exe) for every isolated task.
func TestMain(m *testing.M) {
	startgate.Main()
	os.Exit(m.Run())
}
