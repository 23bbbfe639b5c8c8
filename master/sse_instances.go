package master

import (
	"reflect"
	"slices"

	"github.com/atollhq/atoll/events"
)

// Marathon 1.4's instance and health check events (core/event/Events.scala,
// docs/docs/event-bus.md): an atoll instance is one task, so an instance
// id is its task id.

type instanceChangedEvent struct {
	InstanceID     string   `json:"instanceId"`
	Condition      string   `json:"condition"`
	RunSpecID      string   `json:"runSpecId"`
	AgentID        string   `json:"agentId"`
	Host           string   `json:"host"`
	RunSpecVersion jsonTime `json:"runSpecVersion"`
	EventType      string   `json:"eventType"`
	Timestamp      jsonTime `json:"timestamp"`
}

type instanceHealthChangedEvent struct {
	InstanceID     string   `json:"instanceId"`
	RunSpecID      string   `json:"runSpecId"`
	Healthy        *bool    `json:"healthy"`
	RunSpecVersion jsonTime `json:"runSpecVersion"`
	EventType      string   `json:"eventType"`
	Timestamp      jsonTime `json:"timestamp"`
}

type healthCheckEvent struct {
	AppID       string             `json:"appId"`
	Version     jsonTime           `json:"version"`
	HealthCheck events.HealthCheck `json:"healthCheck"`
	EventType   string             `json:"eventType"`
	Timestamp   jsonTime           `json:"timestamp"`
}

// instanceCondition is Marathon's Condition for a task state; a task the
// master has just created (no agent has reported it yet) is "Created".
func instanceCondition(t events.Task, isNew bool) string {
	if isNew && t.State == events.TaskStaging {
		return "Created"
	}
	switch t.State {
	case events.TaskStaging:
		return "Staging"
	case events.TaskStarting:
		return "Starting"
	case events.TaskRunning:
		return "Running"
	case events.TaskKilling:
		return "Killing"
	case events.TaskKilled:
		return "Killed"
	case events.TaskFinished:
		return "Finished"
	case events.TaskFailed:
		return "Failed"
	case events.TaskError:
		return "Error"
	case events.TaskUnreachable:
		return "Unreachable"
	case events.TaskLost, events.TaskGone:
		return "Gone" // atoll's TASK_LOST is final: the task is gone
	}
	return "Unknown"
}

// instanceFrames are the instance events for a task update; old is the
// task before it, if it existed.
func instanceFrames(id string, ts jsonTime, t events.Task, old events.Task, existed bool) []sseFrame {
	var out []sseFrame
	if !existed || old.State != t.State {
		out = append(out, frame(id, "instance_changed_event", instanceChangedEvent{
			InstanceID: t.ID, Condition: instanceCondition(t, !existed), RunSpecID: t.AppID, AgentID: t.AgentID,
			Host: t.Host, RunSpecVersion: jsonTime(t.Version), EventType: "instance_changed_event", Timestamp: ts,
		}))
	}
	if t.Healthy != nil && (!existed || old.Healthy == nil || *old.Healthy != *t.Healthy) {
		out = append(out, frame(id, "instance_health_changed_event", instanceHealthChangedEvent{
			InstanceID: t.ID, RunSpecID: t.AppID, Healthy: t.Healthy, RunSpecVersion: jsonTime(t.Version),
			EventType: "instance_health_changed_event", Timestamp: ts,
		}))
	}
	return out
}

// healthCheckFrames are add_health_check_event for the checks an app
// gains and remove_health_check_event for those it loses; after is nil
// when the app is removed.
func healthCheckFrames(id string, ts jsonTime, before *events.App, after *events.App) []sseFrame {
	var was, is []events.HealthCheck
	var appID string
	var version jsonTime
	if before != nil {
		was, appID, version = before.HealthChecks, before.ID, jsonTime(before.Version)
	}
	if after != nil {
		is, appID, version = after.HealthChecks, after.ID, jsonTime(after.Version)
	}
	has := func(list []events.HealthCheck, hc events.HealthCheck) bool {
		return slices.ContainsFunc(list, func(x events.HealthCheck) bool { return reflect.DeepEqual(x, hc) })
	}
	var out []sseFrame
	for _, hc := range was {
		if !has(is, hc) {
			out = append(out, frame(id, "remove_health_check_event", healthCheckEvent{
				AppID: appID, Version: version, HealthCheck: hc, EventType: "remove_health_check_event", Timestamp: ts,
			}))
		}
	}
	for _, hc := range is {
		if !has(was, hc) {
			out = append(out, frame(id, "add_health_check_event", healthCheckEvent{
				AppID: appID, Version: version, HealthCheck: hc, EventType: "add_health_check_event", Timestamp: ts,
			}))
		}
	}
	return out
}
