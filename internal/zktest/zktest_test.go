package zktest

import (
	"testing"
	"time"
)

func TestEnsembleStopStart(t *testing.T) {
	e := Start(t, 3)
	leaders := 0
	for i := range e.Len() {
		mode, err := e.Mode(i)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if mode == "leader" {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders, want 1", leaders)
	}
	e.Stop(1)
	if _, err := e.Mode(1); err == nil {
		t.Fatal("stopped node still answers")
	}
	if err := e.Start(1); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStandalone(t *testing.T) {
	e := Start(t, 1)
	if mode, err := e.Mode(0); err != nil || mode != "standalone" {
		t.Fatalf("mode %q, %v", mode, err)
	}
}
