package eventstest

import (
	"fmt"

	"github.com/atollhq/atoll/events"
)

// Agent returns an active agent with a few resources and a zone.
func Agent(id string) events.Agent {
	return events.Agent{
		ID:           id,
		Hostname:     id + ".test",
		IP:           "10.0.0.1",
		Resources:    events.Resources{Cpus: 4, Mem: 8192, Disk: 10000, Ports: []events.PortRange{{Begin: 31000, End: 32000}}},
		Attributes:   map[string]string{"zone": "a"},
		State:        events.AgentActive,
		RegisteredAt: T0,
	}
}

// App returns an app with one service port and Marathon's defaults.
func App(id string, instances int) events.App {
	return events.App{
		ID:              id,
		Cmd:             "sleep 1000",
		Instances:       instances,
		Cpus:            0.1,
		Mem:             32,
		PortDefinitions: []events.PortDefinition{{Port: 10000, Protocol: "tcp"}},
		Constraints:     [][]string{},
		Labels:          map[string]string{},
		Env:             map[string]string{},
		HealthChecks:    []events.HealthCheck{},
		UpgradeStrategy: events.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1},
		BackoffSeconds:  1,
		BackoffFactor:   1.15,
		Version:         T0,
		VersionInfo:     events.VersionInfo{LastScalingAt: T0, LastConfigChangeAt: T0},
	}
}

// Task returns a task of app on agent, in the given state.
func Task(id, appID, agentID string, state events.TaskState) events.Task {
	return events.Task{
		ID:           id,
		AppID:        appID,
		AgentID:      agentID,
		Host:         agentID + ".test",
		IPAddresses:  []events.IPAddress{{IPAddress: "10.0.0.1", Protocol: "IPv4"}},
		Ports:        []int{31000},
		ServicePorts: []int{10000},
		State:        state,
		StagedAt:     T0,
		Version:      T0,
		Cpus:         0.1,
		Mem:          32,
	}
}

// Deployment returns a one-step deployment of app.
func Deployment(id, appID string) events.Deployment {
	actions := []events.DeploymentAction{{Action: "StartApplication", App: appID}}
	return events.Deployment{
		ID:             id,
		Version:        T0,
		AffectedApps:   []string{appID},
		Steps:          []events.DeploymentStep{{Actions: actions}},
		CurrentActions: actions,
		CurrentStep:    1,
		TotalSteps:     1,
	}
}

// Churn commits n changes that touch every kind of record: agents, apps
// (half of them with a secret in their env: ChurnSecret), tasks that
// start and end, deployments that come and go (some to roll back to an
// app with a secret).
func Churn(l *Leader, n int) {
	for i := range n {
		app := fmt.Sprintf("/churn/app%d", i%7)
		task := fmt.Sprintf("churn_app%d.%d", i%7, i%13)
		agent := fmt.Sprintf("agent-%d", i%5)
		switch i % 8 {
		case 0:
			l.Commit(events.PutAgent(Agent(agent)))
		case 1:
			a := App(app, i%4)
			if i%16 == 1 {
				a.Env = map[string]string{"DB_PASSWORD": ChurnSecret}
			}
			l.Commit(events.PutApp(a))
		case 2:
			l.Commit(events.PutTask(Task(task, app, agent, events.TaskStaging)))
		case 3:
			l.Commit(events.PutTask(Task(task, app, agent, events.TaskRunning)))
		case 4:
			d := Deployment(fmt.Sprintf("dep-%d", i%3), app)
			if i%24 == 4 {
				old := App(app, 1)
				old.Env = map[string]string{"DB_PASSWORD": ChurnSecret}
				d.Original = &old
			}
			l.Commit(events.PutDeployment(d))
		case 5:
			l.Commit(events.PutTask(Task(fmt.Sprintf("churn_app%d.%d", i%7, (i+5)%13), app, agent, events.TaskFinished)))
		case 6:
			l.Commit(events.DeleteDeployment(fmt.Sprintf("dep-%d", (i+1)%3)))
		case 7:
			l.Commit(events.DeleteApp(fmt.Sprintf("/churn/app%d", (i+3)%7)))
		}
	}
}

// ChurnSecret is the env value Churn gives some apps: no follower may see it.
const ChurnSecret = "churn-s3cret"
