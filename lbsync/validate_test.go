package lbsync

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	good := "global\n  maxconn 100\ndefaults\n  timeout client 1s\nbackend b\n  balance roundrobin\n  server s1 127.0.0.1:80 check\n"
	if err := Validate(good); err != nil {
		t.Errorf("good config: %v", err)
	}
	bad := good + "  balanse roundrobin\n"
	err := Validate(bad)
	if err == nil || !strings.Contains(err.Error(), "balanse") || !strings.Contains(err.Error(), "backend b") {
		t.Errorf("bad config: %v", err)
	}
}
