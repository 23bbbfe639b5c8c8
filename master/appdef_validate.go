package master

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/master/scheduler"
)

// checkUpgradeStrategy holds the capacities to Marathon's bounds; two
// instances of a single-instance app must never overlap.
func checkUpgradeStrategy(errs *fieldErrs, a *events.App, _ appLimits) {
	us := a.UpgradeStrategy
	between(errs, "/upgradeStrategy/minimumHealthCapacity", us.MinimumHealthCapacity, 0, 1, fmtDouble)
	between(errs, "/upgradeStrategy/maximumOverCapacity", us.MaximumOverCapacity, 0, 1, fmtDouble)
	if a.Labels[singleInstanceLabel] == "true" {
		if us.MinimumHealthCapacity != 0 {
			errs.add("/upgradeStrategy/minimumHealthCapacity", fmt.Sprintf("got %s, expected 0.0", fmtDouble(us.MinimumHealthCapacity)))
		}
		if us.MaximumOverCapacity != 0 {
			errs.add("/upgradeStrategy/maximumOverCapacity", fmt.Sprintf("got %s, expected 0.0", fmtDouble(us.MaximumOverCapacity)))
		}
	}
}

// The exec strings (checkNUL, checkEnv, checkLabels): the master refuses what an agent cannot hand to a process: the
// command, its args and its environment (env, and labels, which tasks get
// as MARATHON_APP_LABEL_*) go to execve as C strings, which end at a NUL;
// Go refuses to start a process with one, so the task would fail on every
// launch. An env name must also be a name: with '=' in it, "A=B=c"
// would set A, not what the app says.
//
// Marathon checks env names only for being non-empty for apps (its
// LegacyEnvVars; EnvVarValidation's strict ^[a-zA-Z_][a-zA-Z0-9_]*$ is for
// pods), so names such as "my-var" stay accepted, as they run. Its paths
// for a name count keys by position ("/env(0)", later "/env/keys(0)"),
// which an object's keys do not have; atoll names the key: "/env(NAME)".
func checkNUL(errs *fieldErrs, path, s string) {
	if strings.ContainsRune(s, 0) {
		errs.add(path, msgNUL)
	}
}

// checkEnv: the names and values of the app's environment (see above).
func checkEnv(errs *fieldErrs, env map[string]string) {
	for _, k := range sortedKeys(env) {
		path := "/env(" + k + ")"
		switch {
		case k == "":
			errs.add(path, msgEnvNameEmpty)
		case strings.ContainsRune(k, '='):
			errs.add(path, msgEnvNameEquals)
		}
		checkNUL(errs, path, k)
		checkNUL(errs, "/env/"+k, env[k])
	}
}

// checkLabels: the keys and values of the app's labels, which tasks get
// as MARATHON_APP_LABEL_* (keys too: MARATHON_APP_LABELS lists them).
func checkLabels(errs *fieldErrs, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		if strings.ContainsRune(k, 0) || strings.ContainsRune(labels[k], 0) {
			errs.add("/labels/"+k, msgNUL)
		}
	}
}

// atLeast is accord's "should be >= min".
func atLeast(errs *fieldErrs, path string, v, min float64, format func(float64) string) {
	if v < min || math.IsNaN(v) {
		errs.add(path, fmt.Sprintf("got %s, expected %s or more", format(v), format(min)))
	}
}

// between is accord's "is between(lo, hi)", inclusive.
func between(errs *fieldErrs, path string, v, lo, hi float64, format func(float64) string) {
	if v < lo || v > hi || math.IsNaN(v) {
		errs.add(path, fmt.Sprintf("got %s, expected between %s and %s", format(v), format(lo), format(hi)))
	}
}

func validatePorts(errs *fieldErrs, defs []events.PortDefinition) {
	seenPort := map[int]bool{}
	seenName := map[string]bool{}
	dupPort, dupName := false, false
	for i, pd := range defs {
		path := fmt.Sprintf("/portDefinitions(%d)", i)
		between(errs, path+"/port", float64(pd.Port), 0, 65535, fmtInt)
		if !validProtocol(pd.Protocol) {
			errs.add(path+"/protocol", msgProtocol)
		}
		// Port 0 asks for a random service port; many may.
		if pd.Port != 0 {
			dupPort = dupPort || seenPort[pd.Port]
			seenPort[pd.Port] = true
		}
		if pd.Name != "" {
			dupName = dupName || seenName[pd.Name]
			seenName[pd.Name] = true
		}
	}
	if dupPort {
		errs.add("/portDefinitions", msgPortsUnique)
	}
	if dupName {
		errs.add("/portDefinitions", msgPortNames)
	}
}

func validProtocol(p string) bool {
	for _, part := range strings.Split(p, ",") {
		if part != "tcp" && part != "udp" {
			return false
		}
	}
	return true
}

func validateHealthCheck(errs *fieldErrs, path string, hc events.HealthCheck, ports int) {
	if !slices.Contains(healthProtocols, hc.Protocol) {
		errs.add(path+"/protocol", fmt.Sprintf("got %q, expected one of: %s", hc.Protocol, strings.Join(healthProtocols, ", ")))
	}
	if hc.Protocol == "COMMAND" {
		if hc.Command == nil || hc.Command.Value == "" {
			errs.add(path+"/command", msgHCCommand)
		}
	} else if hc.Command != nil {
		errs.add(path+"/command", msgHCNoCommand)
	}
	if hc.Port != nil && hc.PortIndex != nil {
		errs.add(path, msgHCPortAndIdx)
	}
	if hc.Port != nil {
		between(errs, path+"/port", float64(*hc.Port), 0, 65535, fmtInt)
	}
	if hc.Protocol != "COMMAND" && hc.PortIndex != nil && (*hc.PortIndex < 0 || *hc.PortIndex >= ports) {
		errs.add(path, msgHCPortIndex)
	}
	atLeast(errs, path+"/gracePeriodSeconds", float64(hc.GracePeriodSeconds), 0, fmtInt)
	atLeast(errs, path+"/intervalSeconds", float64(hc.IntervalSeconds), 0, fmtInt)
	atLeast(errs, path+"/timeoutSeconds", float64(hc.TimeoutSeconds), 0, fmtInt)
	atLeast(errs, path+"/maxConsecutiveFailures", float64(hc.MaxConsecutiveFailures), 0, fmtInt)
	atLeast(errs, path+"/delaySeconds", float64(hc.DelaySeconds), 0, fmtInt)
}

// constraintErrors are the scheduler's own findings on the constraints,
// the rules it will place by.
func constraintErrors(cs [][]string) []FieldErrors {
	_, bad := scheduler.ParseConstraints(cs)
	var errs fieldErrs
	for _, fe := range bad {
		errs.add(fe.Path, fe.Message)
	}
	return errs
}
