package master

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/atollhq/atoll/events"
)

// appSchema is Marathon's app definition (AppDefinition, app.raml,
// AppDefinition.json; master/MARATHON_API.md §1), field by field: its
// JSON key, how it is read (with Marathon's 400s), its default, how an
// update merges it, its 422 rule and how GET /v2/apps and the events show
// it. Every top-level key is here: one the master honours, one Marathon
// only writes (ignored on the way in, as Marathon ignores it), or one it
// refuses with a 422 naming the field (unless its value asks for
// nothing: null, empty, or Marathon's default, so a client that sends
// the defaults keeps working). A key that is not here is refused too:
// Marathon's server ignores it, its schema (additionalProperties: false)
// refuses it, and a typo that changes nothing is worse than an error.
//
// The order is the order fields are read in and shown in GET /v2/apps;
// the events show them in appEventOrder. The views are generated from
// here (appdef_output_gen.go).
//
// A new field of events.App is an entry here (and its key in
// appEventOrder when the events show it). Then
// go test ./master -run TestAppOutputsGenerated -update makes the views
// anew and, after it (the views compiled), go test ./master -run
// TestAppOutputsGolden -update records the outputs that now show it.
var appSchema = []appProp{
	// The id is the URL's on a PUT; appForCreate and appForUpdate check
	// the body's and normalize it (normalizeAppID).
	prop("id", "ID", func(a *events.App) *string { return &a.ID }, (*reader).str).merged(nil).
		shownAlike(shown(func(a *events.App) string { return a.ID })),

	// cmd and args exclude each other: giving one drops the other, so a
	// PUT can switch an app from cmd to args.
	prop("cmd", "Cmd", func(a *events.App) *string { return &a.Cmd }, (*reader).str).
		merged(func(a *events.App, v any, p *appPatch) {
			if a.Cmd = v.(string); a.Cmd != "" && !p.given("args") {
				a.Args = nil
			}
		}).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) {
			if (a.Cmd != "") == (len(a.Args) > 0) && (a.Cmd != "" || !hasImage(*a)) {
				errs.add("/", msgCmdOrArgs)
			}
			checkNUL(errs, "/cmd", a.Cmd)
		}).
		shownAs(shown(func(a *events.App) string { return a.Cmd }).omittedEmpty(), shown(func(a *events.App) *string { return optString(a.Cmd) })),
	prop("args", "Args", func(a *events.App) *[]string { return &a.Args }, (*reader).strs).
		merged(func(a *events.App, v any, p *appPatch) {
			if a.Args = v.([]string); len(a.Args) > 0 && !p.given("cmd") {
				a.Cmd = ""
			}
		}).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) {
			for i, arg := range a.Args {
				checkNUL(errs, fmt.Sprintf("/args(%d)", i), arg)
			}
		}).
		cloned(cloneSlice(func(a *events.App) *[]string { return &a.Args })).
		shownAs(shown(func(a *events.App) []string { return a.Args }).omittedEmpty(), shown(func(a *events.App) []string { return nonNil(a.Args) })),
	prop("user", "User", func(a *events.App) *string { return &a.User }, (*reader).str).
		shownAs(shown(func(a *events.App) string { return a.User }).omittedEmpty(), shown(func(a *events.App) *string { return optString(a.User) })),
	prop("instances", "Instances", func(a *events.App) *int { return &a.Instances }, (*reader).integer).
		defaults(func(a *events.App) { a.Instances = defaultInstances }).
		checked(func(errs *fieldErrs, a *events.App, lim appLimits) {
			if a.Instances < 0 {
				errs.add("/instances", fmt.Sprintf("got %d, expected 0 or more", a.Instances))
			}
			if lim.maxInstances > 0 && a.Instances > lim.maxInstances {
				errs.add("/instances", fmt.Sprintf(fmtTooMany, a.Instances, lim.maxInstances))
			}
			if a.Labels[singleInstanceLabel] == "true" && a.Instances > 1 {
				errs.add("/", msgSingleInst)
			}
		}).
		shownAlike(shown(func(a *events.App) int { return a.Instances })),
	number("cpus", "Cpus", func(a *events.App) *float64 { return &a.Cpus }, defaultCpus, 0, fmtDouble),
	number("mem", "Mem", func(a *events.App) *float64 { return &a.Mem }, defaultMem, 0, fmtDouble),
	number("disk", "Disk", func(a *events.App) *float64 { return &a.Disk }, defaultDisk, 0, fmtDouble),
	unsupported("gpus", "GPUs are not supported", jsonEquals(`0`)).
		shownAlike(shown(func(*events.App) int { return 0 })),

	// ports is Marathon's legacy form of portDefinitions: service ports
	// only; portDefinitions win when both are given (and must agree).
	{key: "ports", rule: fieldRead, read: readWith((*reader).ints),
		apply: func(a *events.App, v any, p *appPatch) {
			if p.given("portDefinitions") {
				return
			}
			ports := v.([]int)
			defs := make([]events.PortDefinition, len(ports))
			for i, port := range ports {
				defs[i] = events.PortDefinition{Port: port, Protocol: "tcp"}
			}
			a.PortDefinitions = defs
		},
		given: func(errs *fieldErrs, p *appPatch) {
			ports, ok := value[[]int](p, "ports")
			defs, both := value[[]events.PortDefinition](p, "portDefinitions")
			if ok && both && !slices.Equal(ports, portNumbers(defs)) {
				errs.add("/", msgPortsAndDefs)
			}
		},
		event: shown(func(a *events.App) []int { return nonNil(a.ServicePorts()) }),
	},
	prop("portDefinitions", "PortDefinitions", func(a *events.App) *[]events.PortDefinition { return &a.PortDefinitions }, (*reader).portDefinitions).
		defaults(func(a *events.App) {
			a.PortDefinitions = []events.PortDefinition{{Port: 0, Protocol: "tcp", Name: "default"}}
		}).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) { validatePorts(errs, a.PortDefinitions) }).
		cloned(clonePortDefinitions).
		shownAlike(shown(func(a *events.App) []events.PortDefinition { return nonNil(a.PortDefinitions) })),
	prop("requirePorts", "RequirePorts", func(a *events.App) *bool { return &a.RequirePorts }, (*reader).boolean).
		shownAlike(shown(func(a *events.App) bool { return a.RequirePorts })),
	prop("constraints", "Constraints", func(a *events.App) *[][]string { return &a.Constraints }, (*reader).constraints).
		defaults(func(a *events.App) { a.Constraints = [][]string{} }).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) { errs.merge(constraintErrors(a.Constraints)) }).
		cloned(cloneConstraints).
		shownAlike(shown(func(a *events.App) [][]string { return nonNil(a.Constraints) })),
	prop("labels", "Labels", func(a *events.App) *map[string]string { return &a.Labels }, (*reader).strMap).
		defaults(func(a *events.App) { a.Labels = map[string]string{} }).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) { checkLabels(errs, a.Labels) }).
		cloned(func(a *events.App) { a.Labels = maps.Clone(a.Labels) }).
		shownAlike(shown(func(a *events.App) map[string]string { return nonNilMap(a.Labels) })),
	prop("env", "Env", func(a *events.App) *map[string]string { return &a.Env }, (*reader).env).
		defaults(func(a *events.App) { a.Env = map[string]string{} }).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) { checkEnv(errs, a.Env) }).
		cloned(func(a *events.App) { a.Env = maps.Clone(a.Env) }).
		shownAlike(shown(func(a *events.App) map[string]string { return nonNilMap(a.Env) })),
	prop("healthChecks", "HealthChecks", func(a *events.App) *[]events.HealthCheck { return &a.HealthChecks }, (*reader).healthChecks).
		defaults(func(a *events.App) { a.HealthChecks = []events.HealthCheck{} }).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) {
			for i, hc := range a.HealthChecks {
				validateHealthCheck(errs, fmt.Sprintf("/healthChecks(%d)", i), hc, len(a.PortSpecs()))
			}
		}).
		cloned(cloneSlice(func(a *events.App) *[]events.HealthCheck { return &a.HealthChecks })).
		shownAlike(shown(func(a *events.App) []events.HealthCheck { return nonNil(a.HealthChecks) })),
	prop("upgradeStrategy", "UpgradeStrategy", func(a *events.App) *events.UpgradeStrategy { return &a.UpgradeStrategy }, (*reader).upgradeStrategy).
		defaults(func(a *events.App) {
			a.UpgradeStrategy = events.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}
		}).
		checked(checkUpgradeStrategy).
		shownAlike(shown(func(a *events.App) events.UpgradeStrategy { return a.UpgradeStrategy })),
	number("backoffSeconds", "BackoffSeconds", func(a *events.App) *float64 { return &a.BackoffSeconds }, defaultBackoffSeconds, 0, fmtInt),
	number("backoffFactor", "BackoffFactor", func(a *events.App) *float64 { return &a.BackoffFactor }, defaultBackoffFactor, 1, fmtDouble),
	number("maxLaunchDelaySeconds", "MaxLaunchDelaySeconds", func(a *events.App) *float64 { return &a.MaxLaunchDelaySeconds }, defaultMaxLaunchDelaySeconds, 0, fmtInt),
	number("taskKillGracePeriodSeconds", "TaskKillGracePeriodSeconds", func(a *events.App) *float64 { return &a.TaskKillGracePeriodSeconds }, 0, 0, fmtInt).
		defaults(nil).
		shownAs(shown(func(a *events.App) float64 { return a.TaskKillGracePeriodSeconds }).omittedEmpty(),
			shown(func(a *events.App) *float64 { return optFloat(a.TaskKillGracePeriodSeconds) })),
	// groups_plan.go orders deployments by them.
	prop("dependencies", "Dependencies", func(a *events.App) *[]string { return &a.Dependencies }, (*reader).strs).
		merged(func(a *events.App, v any, _ *appPatch) { a.Dependencies = resolveDependencies(a.ID, v.([]string)) }). // groups_path.go
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) { validateDependencies(errs, a.Dependencies) }).
		cloned(cloneSlice(func(a *events.App) *[]string { return &a.Dependencies })).
		shownAlike(shown(func(a *events.App) []string { return nonNil(a.Dependencies) })),
	prop("killSelection", "KillSelection", func(a *events.App) *string { return &a.KillSelection }, (*reader).str).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) {
			switch a.KillSelection {
			case "", events.KillYoungestFirst, events.KillOldestFirst:
			default:
				errs.add("/killSelection", fmt.Sprintf("got %s, expected one of: [%s, %s]", a.KillSelection, events.KillYoungestFirst, events.KillOldestFirst))
			}
		}).
		shownAlike(shown(func(a *events.App) string { return killSelectionOf(*a) })),
	prop("fetch", "Fetch", func(a *events.App) *[]events.FetchURI { return &a.Fetch }, (*reader).fetch). // appdef_fetch.go
														checked(func(errs *fieldErrs, a *events.App, _ appLimits) { validateFetch(errs, a.Fetch) }).
														shownAlike(shown(func(a *events.App) []events.FetchURI { return nonNil(a.Fetch) })),
	prop("readinessChecks", "ReadinessChecks", func(a *events.App) *[]events.ReadinessCheck { return &a.ReadinessChecks }, (*reader).readinessChecks). // appdef_readiness.go
																				checked(func(errs *fieldErrs, a *events.App, _ appLimits) { validateReadiness(errs, *a) }).
																				shownAlike(shown(func(a *events.App) []events.ReadinessCheck { return nonNil(a.ReadinessChecks) })),
	prop("unreachableStrategy", "UnreachableStrategy", func(a *events.App) *events.UnreachableStrategy { return a.UnreachableStrategy }, (*reader).unreachableStrategy). // unreachable.go
																						merged(func(a *events.App, v any, _ *appPatch) {
			us := v.(events.UnreachableStrategy)
			a.UnreachableStrategy = &us
		}).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) { validateUnreachable(errs, a.UnreachableStrategy) }).
		shownAlike(shown(func(a *events.App) any { return unreachableView(a.UnreachableStrategy) }).omittedEmpty()),
	// uris is Marathon's legacy form of fetch.
	{key: "uris", rule: fieldRead, read: readWith((*reader).strs),
		apply: func(a *events.App, v any, p *appPatch) {
			if !p.given("fetch") {
				a.Fetch = fetchOfURIs(v.([]string))
			}
		},
		given: func(errs *fieldErrs, p *appPatch) {
			fetch, ok := value[[]events.FetchURI](p, "fetch")
			uris, both := value[[]string](p, "uris")
			if ok && both && len(fetch) > 0 && len(uris) > 0 {
				errs.add("/uris", msgFetchWithURIs)
			}
		},
	},
	// container and networks: appdef_container.go. Both are merged at the
	// end of applyTo, where they settle the app's ports.
	appProp{key: "container", fields: []string{"Container"}, rule: fieldRead, read: readContainer,
		clone: func(a *events.App) { a.Container = cloneContainer(a.Container) },
		check: func(errs *fieldErrs, a *events.App, _ appLimits) { validateContainer(errs, *a) },
	}.shownAlike(shown(func(a *events.App) *containerView { return containerViewOf(a.Container) }).omittedEmpty()),
	appProp{key: "networks", fields: []string{"Networks"}, rule: fieldRead, read: readNetworks, settle: settleNetworks,
		clone: cloneSlice(func(a *events.App) *[]events.Network { return &a.Networks }),
	}.shownAlike(shown(func(a *events.App) []events.Network { return networksView(a.Networks) })),

	// version is a rollback request (rollbackOf, http_versions.go);
	// the master sets both.
	appProp{key: "version", fields: []string{"Version"}, rule: fieldRead}.
		shownAlike(shown(func(a *events.App) jsonTime { return jsonTime(a.Version) })),
	outputOnly("versionInfo", "VersionInfo").shownAlike(shown(versionInfoOf)),

	// Status GET /v2/apps adds (appView); waiting is atoll's: why a
	// deployment waits.
	outputOnly("tasksStaged"), outputOnly("tasksRunning"), outputOnly("tasksHealthy"), outputOnly("tasksUnhealthy"),
	outputOnly("deployments"), outputOnly("tasks"), outputOnly("lastTaskFailure"), outputOnly("taskStats"),
	outputOnly("readinessCheckResults"), outputOnly("waiting"),

	unsupported("ipAddress", "IP-per-task networking is not supported: tasks use the host's network", nil),
	unsupported("check", "Mesos checks are not supported: use healthChecks", nil),
	unsupported("storeUrls", "there is no artifact store", nil),
	unsupported("acceptedResourceRoles", "this cluster has no Mesos roles: every resource is unreserved (\"*\")", jsonEquals(`["*"]`)),
	unsupported("role", "this cluster has no Mesos roles: every task runs as \"*\"", jsonEquals(`"*"`)),
	unsupported("residency", "resident tasks (persistent volumes) are not supported", nil),
	unsupported("secrets", "secret stores are not supported", nil),
	unsupported("executor", "custom executors are not supported: tasks run under the agent", jsonEquals(`"//cmd"`)),
	unsupported("resourceLimits", "resource limits above the request are not supported", nil),
	unsupported("tty", "a TTY needs a container", jsonEquals(`false`)),
}

// appEventOrder is the order Marathon's events (appDefinition) show an
// app's fields in, which is not GET /v2/apps' order.
var appEventOrder = []string{
	"id", "cmd", "args", "user", "env", "instances", "cpus", "mem", "disk", "gpus", "constraints",
	"portDefinitions", "ports", "requirePorts", "backoffSeconds", "backoffFactor", "maxLaunchDelaySeconds",
	"healthChecks", "upgradeStrategy", "labels", "taskKillGracePeriodSeconds", "dependencies", "killSelection",
	"fetch", "readinessChecks", "unreachableStrategy", "container", "networks", "version", "versionInfo",
}

// number is a number field with a default and Marathon's ">= min" rule,
// shown as it is in both outputs.
func number(key, field string, get func(*events.App) *float64, def, min float64, format func(float64) string) appProp {
	show := shown(func(a *events.App) float64 { return *get(a) })
	return prop(key, field, get, (*reader).number).
		defaults(func(a *events.App) { *get(a) = def }).
		checked(func(errs *fieldErrs, a *events.App, _ appLimits) { atLeast(errs, "/"+key, *get(a), min, format) }).
		shownAlike(show)
}

// readContainer reads the container (appdef_container.go); it is merged
// by applyContainer, not by the generic merge.
func readContainer(r *reader, p *appPatch, path string, raw json.RawMessage) (any, bool) {
	if c, ok := r.container(path, raw, &p.containers, &p.containers.legacyNetwork); ok {
		p.containers.container = &c
	}
	return nil, false
}

// readNetworks reads the networks, merged as the container is.
func readNetworks(r *reader, p *appPatch, path string, raw json.RawMessage) (any, bool) {
	if nets, ok := each(r, path, raw, r.network); ok {
		p.containers.networks = &nets
	}
	return nil, false
}

func versionInfoOf(a *events.App) versionInfoView {
	return versionInfoView{
		LastScalingAt:      jsonTime(a.VersionInfo.LastScalingAt),
		LastConfigChangeAt: jsonTime(a.VersionInfo.LastConfigChangeAt),
	}
}
