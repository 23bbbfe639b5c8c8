package master

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/atollhq/atoll/events"
)

// GET /v2/groups/{id}/versions/{v} and GET /v2/groups/{id}/apps, as
// Marathon's GroupsResource.group answers them (GroupInfoService's
// selectGroupVersion and selectAppsInGroup), read from the read view
// without the master's lock.

// msgBadTimestamp is Marathon's refusal of a version that is no time
// (Timestamp.apply: an IllegalArgumentException, 422).
const msgBadTimestamp = "Invalid timestamp provided '%s'. Expecting ISO-8601 datetime string."

// getGroupAt is GET /v2/groups[/{id}]/versions/{v}: the group as it was
// at v, one of its /versions, with the group embeds asked for and its
// apps as their definitions then (Marathon embeds no app status here).
// A group or version unknown is Marathon's 404 "Group '/x' does not
// exist"; a version whose contents atoll no longer keeps is a 422 that
// says so.
func (m *Master) getGroupAt(w http.ResponseWriter, r *http.Request, id, version string) {
	v, err := time.Parse(time.RFC3339Nano, version)
	if err != nil {
		m.writeError(w, r, &UnprocessableError{Message: fmt.Sprintf(msgBadTimestamp, version)})
		return
	}
	held, ok, err := groupAt(m.reads.load(), id, v)
	if !ok {
		m.writeError(w, r, groupNotFound(id))
		return
	}
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	n := heldTree(id, held)
	embed := groupEmbedOf(r.URL.Query()["embed"], m.cfg.Now())
	embed.app, embed.definitions = appEmbeds{}, true
	m.writeGroup(w, r, n, embed)
}

// heldTree is the tree of group id as held (groupAt): each group's
// version is the one it had then.
func heldTree(id string, held groupHeld) *groupNode {
	v := &readView{groups: map[string]events.Group{}}
	for _, a := range held.apps {
		v.apps = append(v.apps, newAppEntry(a.ID, &a, noTasks, nil, nil, nil))
	}
	slices.SortFunc(v.apps, func(a, b *appEntry) int { return strings.Compare(a.id, b.id) })
	for g, at := range held.versions {
		rec := held.groups[g]
		rec.ID, rec.Version = g, at
		v.groups[g] = rec
	}
	return groupTree(v)[id]
}

// getGroupApps is GET /v2/groups[/{id}]/apps: a bare array of every app
// below the group (Marathon's transitiveApps), with the app embeds asked
// for (group.apps.tasks, …); a group that does not exist has none, as in
// Marathon.
func (m *Master) getGroupApps(w http.ResponseWriter, r *http.Request, id string) {
	m.writeApps(w, r, m.reads.load().appsBelow(id), groupEmbedOf(r.URL.Query()["embed"], m.cfg.Now()).app, "[", "]")
}
