package dnsserver

import (
	"strings"
	"testing"
	"testing/quick"
)

// Cases from Mesos-DNS's records/labels tests (RFC1123), plus ours.
func TestSanitizeLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a"},
		{"-", ""},
		{"a---", "a"},
		{"---a---", "a"},
		{"---a---b", "a---b"},
		{"a.b.c.d.e", "a-b-c-d-e"},
		{"a.c.d_de.", "a-c-d-de"},
		{"abc123", "abc123"},
		{"-abc123", "abc123"},
		{"abc123-", "abc123"},
		{"abc-123", "abc-123"},
		{"abc--123", "abc--123"},
		{"r29f.dev.angrypigs", "r29f-dev-angrypigs"},
		{"4abc123", "4abc123"},
		{"-4abc123", "4abc123"},
		{"89fdgsf---gs7-fgs--d7fddg-123", "89fdgsf---gs7-fgs--d7fddg-123"},
		{"89fdgsf---gs7-fgs--d7fddg-", "89fdgsf---gs7-fgs--d7fddg"},
		{"fd%gsf---gs7-f$gs--d7fddg-123", "fdgsf---gs7-fgs--d7fddg-123"},
		{"fd%gsf---gs7-f$gs--d7fddg123456789012345678901234567890123456789-123", "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
		{"$$fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-123", "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
		{"%%fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789---123", "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"},
		{"##fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789-", "fdgsf---gs7-fgs--d7fddg123456789012345678901234567890123456789"},
		{"hello--------------------------------------------------------f", "hello--------------------------------------------------------f"},
		{"hello----------------------------------------------------------f", "hellof"},
		{"chronos with a space AND MIXED CASE-2.0.1", "chronoswithaspaceandmixedcase-2-0-1"},
		{"App_01", "app-01"},
		{"héllo wörld", "hllowrld"},
		// Where Mesos-DNS would leave a trailing dash: the refill after
		// the cut ends in one.
		{strings.Repeat("a", 61) + "--a-b", strings.Repeat("a", 61) + "a"},
	}
	for _, tc := range tests {
		if got := sanitizeLabel(tc.in); got != tc.want {
			t.Errorf("sanitizeLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSanitizeLabelProperties(t *testing.T) {
	valid := func(s string) bool {
		l := sanitizeLabel(s)
		if len(l) > maxLabel || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return false
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
		return true
	}
	if err := quick.Check(valid, &quick.Config{MaxCount: 20000}); err != nil {
		t.Error(err)
	}
}

func TestDomainFrag(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{".", ""},
		{"...", ""},
		{"abc.", "abc"},
		{".a.c", "a.c"},
		{"a..c.e", "a.c.e"},
		{"space space.com", "spacespace.com"},
		{"not$1234.com", "not1234.com"},
		{"(@ host . com", "host.com"},
		{"MiXeDcase.CoM", "mixedcase.com"},
		{"pod_123$abc.marathon-0.6.0-dev.mesos", "pod-123abc.marathon-0.6.0-dev.mesos"},
	}
	for _, tc := range tests {
		if got := domainFrag(tc.in); got != tc.want {
			t.Errorf("domainFrag(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTaskName(t *testing.T) {
	tests := []struct{ appID, want string }{
		{"/app01", "app01"},
		{"/group/app01", "app01.group"},
		{"/a/b/c", "c.b.a"},
		{"/Group_1/My.App", "my-app.group-1"},
		{"group/app", "app.group"},
		{"//x//", "x"},
		{"/", ""},
		{"/$$/", ""},
	}
	for _, tc := range tests {
		if got := taskName(tc.appID); got != tc.want {
			t.Errorf("taskName(%q) = %q, want %q", tc.appID, got, tc.want)
		}
	}
}

func TestCanonicalLabel(t *testing.T) {
	h := taskHash("web.1")
	tests := []struct{ task, taskID, agentID, want string }{
		{"web", "web.1", "2f3c-S1", "web-" + h + "-s1"},
		{"app01.group", "web.1", "2f3c-S1", "app01.group-" + h + "-s1"},
		{"web", "web.1", "", "web-" + h},
		{strings.Repeat("x", 63), "web.1", "a-S12", strings.Repeat("x", 63-10) + "-" + h + "-s12"},
	}
	for _, tc := range tests {
		got := canonicalLabel(tc.task, tc.taskID, tc.agentID)
		if got != tc.want {
			t.Errorf("canonicalLabel(%q, %q, %q) = %q, want %q", tc.task, tc.taskID, tc.agentID, got, tc.want)
		}
		if !validName(got + ".marathon.mesos.") {
			t.Errorf("canonicalLabel(%q, ...) = %q: not a valid name", tc.task, got)
		}
	}
}

func TestTaskHash(t *testing.T) {
	a, b := taskHash("app.1"), taskHash("app.2")
	if len(a) != 5 || a == b || a != taskHash("app.1") {
		t.Fatalf("taskHash: %q, %q: want 5 stable characters that differ", a, b)
	}
	for _, c := range a + b {
		if !strings.ContainsRune(zbase32, c) {
			t.Errorf("taskHash: %q is not z-base-32", c)
		}
	}
}

func TestAgentIDTail(t *testing.T) {
	tests := []struct{ id, want string }{
		{"20150101-6fbc-4bd5-S3", "s3"},
		{"3f2a9c1e-0b8e-4f7a-9d3c-5e1b2a4c6d8f-S12", "s12"},
		{"agent", "agent"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := agentIDTail(tc.id); got != tc.want {
			t.Errorf("agentIDTail(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"web.marathon.mesos.", true},
		{"web.marathon.mesos", false},
		{"a..mesos.", false},
		{"_" + strings.Repeat("a", 63) + "._tcp.marathon.mesos.", false},
		{strings.Repeat("a.", 127), true},
		{strings.Repeat("a.", 128), false},
	}
	for _, tc := range tests {
		if got := validName(tc.name); got != tc.want {
			t.Errorf("validName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
