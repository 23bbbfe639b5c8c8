package cgroup

import (
	"os"
	"testing"

	"github.com/atollhq/atoll/internal/testvm"
)

// TestMain is also the /init of the VM TestCgroupV2InAVM boots: as
// process 1 it sets the VM up and runs this package's tests in it.
func TestMain(m *testing.M) {
	testvm.Main()
	os.Exit(m.Run())
}
