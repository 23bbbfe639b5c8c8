package master

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/master/scheduler"
)

// validateApp checks a complete app by Marathon's rules and returns the
// failures per JSON path; none means the app may be committed. The id is
// checked by normalizeAppID, where it is read.
func validateApp(a events.App) []FieldErrors {
	var errs fieldErrs
	if (a.Cmd != "") == (len(a.Args) > 0) {
		errs.add("/", msgCmdOrArgs)
	}
	if a.Instances < 0 {
		errs.add("/instances", fmt.Sprintf("got %d, expected 0 or more", a.Instances))
	}
	if a.Labels[singleInstanceLabel] == "true" && a.Instances > 1 {
		errs.add("/", msgSingleInst)
	}
	atLeast(&errs, "/cpus", a.Cpus, 0, fmtDouble)
	atLeast(&errs, "/mem", a.Mem, 0, fmtDouble)
	atLeast(&errs, "/disk", a.Disk, 0, fmtDouble)
	atLeast(&errs, "/backoffSeconds", a.BackoffSeconds, 0, fmtInt)
	atLeast(&errs, "/backoffFactor", a.BackoffFactor, 1, fmtDouble)
	atLeast(&errs, "/maxLaunchDelaySeconds", a.MaxLaunchDelaySeconds, 0, fmtInt)
	atLeast(&errs, "/taskKillGracePeriodSeconds", a.TaskKillGracePeriodSeconds, 0, fmtInt)
	validatePorts(&errs, a.PortDefinitions)
	for _, fe := range constraintErrors(a.Constraints) {
		errs.add(fe.Path, fe.Errors...)
	}
	for i, hc := range a.HealthChecks {
		validateHealthCheck(&errs, fmt.Sprintf("/healthChecks(%d)", i), hc, len(a.PortDefinitions))
	}
	us := a.UpgradeStrategy
	between(&errs, "/upgradeStrategy/minimumHealthCapacity", us.MinimumHealthCapacity, 0, 1, fmtDouble)
	between(&errs, "/upgradeStrategy/maximumOverCapacity", us.MaximumOverCapacity, 0, 1, fmtDouble)
	if a.Labels[singleInstanceLabel] == "true" {
		// Two instances of a single-instance app must never overlap.
		if us.MinimumHealthCapacity != 0 {
			errs.add("/upgradeStrategy/minimumHealthCapacity", fmt.Sprintf("got %s, expected 0.0", fmtDouble(us.MinimumHealthCapacity)))
		}
		if us.MaximumOverCapacity != 0 {
			errs.add("/upgradeStrategy/maximumOverCapacity", fmt.Sprintf("got %s, expected 0.0", fmtDouble(us.MaximumOverCapacity)))
		}
	}
	return errs
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
