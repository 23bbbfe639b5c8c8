// Code generated from appSchema by TestAppOutputsGenerated; DO NOT EDIT.
// go test ./master -run TestAppOutputsGenerated -update

package master

import "github.com/atollhq/atoll/events"

// appDefView is an app's definition as GET /v2/apps shows it; appView adds its status.
type appDefView struct {
	ID                         string                  `json:"id"`
	Cmd                        string                  `json:"cmd,omitempty"`
	Args                       []string                `json:"args,omitempty"`
	User                       string                  `json:"user,omitempty"`
	Instances                  int                     `json:"instances"`
	Cpus                       float64                 `json:"cpus"`
	Mem                        float64                 `json:"mem"`
	Disk                       float64                 `json:"disk"`
	Gpus                       int                     `json:"gpus"`
	PortDefinitions            []events.PortDefinition `json:"portDefinitions"`
	RequirePorts               bool                    `json:"requirePorts"`
	Constraints                [][]string              `json:"constraints"`
	Labels                     map[string]string       `json:"labels"`
	Env                        map[string]string       `json:"env"`
	HealthChecks               []events.HealthCheck    `json:"healthChecks"`
	UpgradeStrategy            events.UpgradeStrategy  `json:"upgradeStrategy"`
	BackoffSeconds             float64                 `json:"backoffSeconds"`
	BackoffFactor              float64                 `json:"backoffFactor"`
	MaxLaunchDelaySeconds      float64                 `json:"maxLaunchDelaySeconds"`
	TaskKillGracePeriodSeconds float64                 `json:"taskKillGracePeriodSeconds,omitempty"`
	Dependencies               []string                `json:"dependencies"`
	KillSelection              string                  `json:"killSelection"`
	Fetch                      []events.FetchURI       `json:"fetch"`
	ReadinessChecks            []events.ReadinessCheck `json:"readinessChecks"`
	UnreachableStrategy        any                     `json:"unreachableStrategy,omitempty"`
	Container                  *containerView          `json:"container,omitempty"`
	Networks                   []events.Network        `json:"networks"`
	Version                    jsonTime                `json:"version"`
	VersionInfo                versionInfoView         `json:"versionInfo"`
}

func appDefViewOf(a *events.App) appDefView {
	return appDefView{
		ID:                         appSchema[0].api.show.(func(*events.App) string)(a),
		Cmd:                        appSchema[1].api.show.(func(*events.App) string)(a),
		Args:                       appSchema[2].api.show.(func(*events.App) []string)(a),
		User:                       appSchema[3].api.show.(func(*events.App) string)(a),
		Instances:                  appSchema[4].api.show.(func(*events.App) int)(a),
		Cpus:                       appSchema[5].api.show.(func(*events.App) float64)(a),
		Mem:                        appSchema[6].api.show.(func(*events.App) float64)(a),
		Disk:                       appSchema[7].api.show.(func(*events.App) float64)(a),
		Gpus:                       appSchema[8].api.show.(func(*events.App) int)(a),
		PortDefinitions:            appSchema[10].api.show.(func(*events.App) []events.PortDefinition)(a),
		RequirePorts:               appSchema[11].api.show.(func(*events.App) bool)(a),
		Constraints:                appSchema[12].api.show.(func(*events.App) [][]string)(a),
		Labels:                     appSchema[13].api.show.(func(*events.App) map[string]string)(a),
		Env:                        appSchema[14].api.show.(func(*events.App) map[string]string)(a),
		HealthChecks:               appSchema[15].api.show.(func(*events.App) []events.HealthCheck)(a),
		UpgradeStrategy:            appSchema[16].api.show.(func(*events.App) events.UpgradeStrategy)(a),
		BackoffSeconds:             appSchema[17].api.show.(func(*events.App) float64)(a),
		BackoffFactor:              appSchema[18].api.show.(func(*events.App) float64)(a),
		MaxLaunchDelaySeconds:      appSchema[19].api.show.(func(*events.App) float64)(a),
		TaskKillGracePeriodSeconds: appSchema[20].api.show.(func(*events.App) float64)(a),
		Dependencies:               appSchema[21].api.show.(func(*events.App) []string)(a),
		KillSelection:              appSchema[22].api.show.(func(*events.App) string)(a),
		Fetch:                      appSchema[23].api.show.(func(*events.App) []events.FetchURI)(a),
		ReadinessChecks:            appSchema[24].api.show.(func(*events.App) []events.ReadinessCheck)(a),
		UnreachableStrategy:        appSchema[25].api.show.(func(*events.App) any)(a),
		Container:                  appSchema[27].api.show.(func(*events.App) *containerView)(a),
		Networks:                   appSchema[28].api.show.(func(*events.App) []events.Network)(a),
		Version:                    appSchema[29].api.show.(func(*events.App) jsonTime)(a),
		VersionInfo:                appSchema[30].api.show.(func(*events.App) versionInfoView)(a),
	}
}

// appDefinition is an app as Marathon's AppDefinition JSON has it in its events.
type appDefinition struct {
	ID                         string                  `json:"id"`
	Cmd                        *string                 `json:"cmd"`
	Args                       []string                `json:"args"`
	User                       *string                 `json:"user"`
	Env                        map[string]string       `json:"env"`
	Instances                  int                     `json:"instances"`
	Cpus                       float64                 `json:"cpus"`
	Mem                        float64                 `json:"mem"`
	Disk                       float64                 `json:"disk"`
	Gpus                       int                     `json:"gpus"`
	Constraints                [][]string              `json:"constraints"`
	PortDefinitions            []events.PortDefinition `json:"portDefinitions"`
	Ports                      []int                   `json:"ports"`
	RequirePorts               bool                    `json:"requirePorts"`
	BackoffSeconds             float64                 `json:"backoffSeconds"`
	BackoffFactor              float64                 `json:"backoffFactor"`
	MaxLaunchDelaySeconds      float64                 `json:"maxLaunchDelaySeconds"`
	HealthChecks               []events.HealthCheck    `json:"healthChecks"`
	UpgradeStrategy            events.UpgradeStrategy  `json:"upgradeStrategy"`
	Labels                     map[string]string       `json:"labels"`
	TaskKillGracePeriodSeconds *float64                `json:"taskKillGracePeriodSeconds"`
	Dependencies               []string                `json:"dependencies"`
	KillSelection              string                  `json:"killSelection"`
	Fetch                      []events.FetchURI       `json:"fetch"`
	ReadinessChecks            []events.ReadinessCheck `json:"readinessChecks"`
	UnreachableStrategy        any                     `json:"unreachableStrategy,omitempty"`
	Container                  *containerView          `json:"container,omitempty"`
	Networks                   []events.Network        `json:"networks"`
	Version                    jsonTime                `json:"version"`
	VersionInfo                versionInfoView         `json:"versionInfo"`
}

func appEventViewOf(a *events.App) appDefinition {
	return appDefinition{
		ID:                         appSchema[0].event.show.(func(*events.App) string)(a),
		Cmd:                        appSchema[1].event.show.(func(*events.App) *string)(a),
		Args:                       appSchema[2].event.show.(func(*events.App) []string)(a),
		User:                       appSchema[3].event.show.(func(*events.App) *string)(a),
		Env:                        appSchema[14].event.show.(func(*events.App) map[string]string)(a),
		Instances:                  appSchema[4].event.show.(func(*events.App) int)(a),
		Cpus:                       appSchema[5].event.show.(func(*events.App) float64)(a),
		Mem:                        appSchema[6].event.show.(func(*events.App) float64)(a),
		Disk:                       appSchema[7].event.show.(func(*events.App) float64)(a),
		Gpus:                       appSchema[8].event.show.(func(*events.App) int)(a),
		Constraints:                appSchema[12].event.show.(func(*events.App) [][]string)(a),
		PortDefinitions:            appSchema[10].event.show.(func(*events.App) []events.PortDefinition)(a),
		Ports:                      appSchema[9].event.show.(func(*events.App) []int)(a),
		RequirePorts:               appSchema[11].event.show.(func(*events.App) bool)(a),
		BackoffSeconds:             appSchema[17].event.show.(func(*events.App) float64)(a),
		BackoffFactor:              appSchema[18].event.show.(func(*events.App) float64)(a),
		MaxLaunchDelaySeconds:      appSchema[19].event.show.(func(*events.App) float64)(a),
		HealthChecks:               appSchema[15].event.show.(func(*events.App) []events.HealthCheck)(a),
		UpgradeStrategy:            appSchema[16].event.show.(func(*events.App) events.UpgradeStrategy)(a),
		Labels:                     appSchema[13].event.show.(func(*events.App) map[string]string)(a),
		TaskKillGracePeriodSeconds: appSchema[20].event.show.(func(*events.App) *float64)(a),
		Dependencies:               appSchema[21].event.show.(func(*events.App) []string)(a),
		KillSelection:              appSchema[22].event.show.(func(*events.App) string)(a),
		Fetch:                      appSchema[23].event.show.(func(*events.App) []events.FetchURI)(a),
		ReadinessChecks:            appSchema[24].event.show.(func(*events.App) []events.ReadinessCheck)(a),
		UnreachableStrategy:        appSchema[25].event.show.(func(*events.App) any)(a),
		Container:                  appSchema[27].event.show.(func(*events.App) *containerView)(a),
		Networks:                   appSchema[28].event.show.(func(*events.App) []events.Network)(a),
		Version:                    appSchema[29].event.show.(func(*events.App) jsonTime)(a),
		VersionInfo:                appSchema[30].event.show.(func(*events.App) versionInfoView)(a),
	}
}
