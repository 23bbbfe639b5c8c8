package master

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/atollhq/atoll/events"
)

// Decoding a /v2/groups body, Marathon's GroupUpdate: id, apps (full app
// definitions), groups (GroupUpdates), dependencies, scaleBy, version.
// Ids are made absolute against the group they are in; errors carry the
// path of what they concern ("/apps(0)/cmd", "/groups(1)/id").

// groupFields are the fields of Marathon's group JSON (types/group.raml,
// schema/Group.json, whose additionalProperties is false).
var groupFields = map[string]bool{
	"id": true, "apps": true, "groups": true, "dependencies": true, "scaleBy": true,
	"version": true, "pods": true, "enforceRole": true,
}

const (
	fmtNotChild          = "identifier %s is not child of %s. Hint: use relative paths."
	msgUnknownGroupField = "is not a field of a group (Marathon's Group schema allows no other)"
	// msgOnlyField is Marathon's refusal of a version or a scaleBy given
	// with any other field (Validation.theOnlyDefinedOptionIn).
	msgOnlyField   = "not allowed in conjunction with other properties."
	msgVersionAt   = "must be a version as /v2/groups/{id}/versions lists them (ISO 8601, e.g. 2026-12-02T15:04:05.000Z)"
	msgGroupPods   = "is not supported: atoll runs no pods"
	msgEnforceRole = "is not supported: atoll has no Mesos roles, so a group cannot enforce one"
	msgScaleByNeg  = "got %s, expected 0.0 or more"
)

// groupErrs collects a body's type errors (400) and validation errors
// (422) with their paths.
type groupErrs struct {
	typeErrs, invalid fieldErrs
}

func (g *groupErrs) result() error {
	if len(g.typeErrs) > 0 {
		return &InvalidJSONError{Message: msgInvalidJSON, Details: g.typeErrs}
	}
	if len(g.invalid) > 0 {
		return &ValidationError{Details: g.invalid}
	}
	return nil
}

// decodeGroupBody reads a POST or PUT body for the group at path (the
// URL's): the body's id, relative to path, names the group changed (as
// Marathon's GroupsResource.updateOrCreate takes it), path itself when
// there is none.
func decodeGroupBody(body []byte, path string, lim appLimits) (groupUpdate, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return groupUpdate{}, &InvalidJSONError{Message: msgNoContent,
			Details: []FieldErrors{{Path: "/", Errors: []string{noContentDetails}}}}
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return groupUpdate{}, &InvalidJSONError{Message: msgInvalidJSON,
			Details: []FieldErrors{{Path: "/", Errors: []string{err.Error()}}}}
	}
	var errs groupErrs
	u := decodeGroup(&errs, "", json.RawMessage(body), path, lim)
	if err := errs.result(); err != nil {
		return groupUpdate{}, err
	}
	return u, nil
}

// decodeGroup reads the group at JSON path p. base is the group its id is
// relative to: the URL's for the body, the enclosing group's for a group
// in it, which must be below that group.
func decodeGroup(errs *groupErrs, p string, raw json.RawMessage, base string, lim appLimits) groupUpdate {
	r := &reader{}
	obj, ok := r.object(pathOr(p), raw)
	if !ok {
		errs.typeErrs.merge(r.typeErrs)
		return groupUpdate{}
	}
	for _, k := range sortedKeys(obj) {
		if !groupFields[k] {
			errs.invalid.add(p+"/"+k, msgUnknownGroupField)
		}
	}
	u := groupUpdate{ID: base}
	if raw, ok := obj["id"]; ok && !isNull(raw) {
		if s, ok := r.str(p+"/id", raw); ok {
			id := resolvePath(base, s)
			_, bad := normalizeAppID(id)
			switch {
			case id == rootGroupID && base == rootGroupID:
			case len(bad) > 0:
				errs.invalid.add(p+"/id", bad...)
			case p != "" && !isUnder(id, base):
				errs.invalid.add(p+"/id", fmt.Sprintf(fmtNotChild, id, base))
			}
			u.ID = id
		}
	} else if p != "" {
		errs.typeErrs.add(p+"/id", errPathMissing)
	}
	if raw, ok := obj["dependencies"]; ok && !isNull(raw) {
		if deps, ok := r.strs(p+"/dependencies", raw); ok {
			resolved := make([]string, 0, len(deps))
			for i, d := range deps {
				id := resolvePath(u.ID, d)
				if _, bad := normalizeAppID(id); len(bad) > 0 {
					errs.invalid.add(fmtPath(p+"/dependencies", i), bad...)
				}
				resolved = append(resolved, id)
			}
			u.Dependencies = &resolved
		}
	}
	if raw, ok := obj["scaleBy"]; ok && !isNull(raw) {
		if f, ok := r.number(p+"/scaleBy", raw); ok {
			if f < 0 {
				errs.invalid.add(p+"/scaleBy", fmt.Sprintf(msgScaleByNeg, fmtDouble(f)))
			}
			u.ScaleBy = &f
		}
	}
	if raw, ok := obj["version"]; ok && !isNull(raw) {
		if s, ok := r.str(p+"/version", raw); ok {
			v, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				errs.invalid.add(p+"/version", msgVersionAt)
			}
			u.Version = &v
		}
	}
	// A rollback or a scaling is the whole of its update (Marathon's
	// GroupUpdate validation): any other field given with it, the id
	// included, is refused.
	given := 0
	for k, raw := range obj {
		if groupFields[k] && !isNull(raw) {
			given++
		}
	}
	for _, k := range []string{"version", "scaleBy"} {
		if raw, ok := obj[k]; ok && !isNull(raw) && given > 1 {
			errs.invalid.add(p+"/"+k, msgOnlyField)
		}
	}
	if raw, ok := obj["pods"]; ok && !isNull(raw) {
		if items, ok := r.array(p+"/pods", raw); ok && len(items) > 0 {
			errs.invalid.add(p+"/pods", msgGroupPods)
		}
	}
	if raw, ok := obj["enforceRole"]; ok && !isNull(raw) {
		if b, ok := r.boolean(p+"/enforceRole", raw); ok && b {
			errs.invalid.add(p+"/enforceRole", msgEnforceRole)
		}
	}
	if raw, ok := obj["apps"]; ok && !isNull(raw) {
		if items, ok := r.array(p+"/apps", raw); ok {
			apps := make([]events.App, 0, len(items))
			for i, item := range items {
				if a, ok := decodeGroupApp(errs, fmtPath(p+"/apps", i), item, u.ID, lim); ok {
					apps = append(apps, a)
				}
			}
			u.Apps = &apps
		}
	}
	if raw, ok := obj["groups"]; ok && !isNull(raw) {
		if items, ok := r.array(p+"/groups", raw); ok {
			subs := make([]groupUpdate, 0, len(items))
			for i, item := range items {
				sub := decodeGroup(errs, fmtPath(p+"/groups", i), item, u.ID, lim)
				subs = append(subs, sub)
			}
			u.Groups = &subs
		}
	}
	errs.typeErrs.merge(r.typeErrs)
	return u
}

// decodeGroupApp reads app definition p of group, complete with
// Marathon's defaults, as POST /v2/apps takes it; its id is relative to
// the group and must be a child of it.
func decodeGroupApp(errs *groupErrs, p string, raw json.RawMessage, group string, lim appLimits) (events.App, bool) {
	patch, err := decodeAppPatch(raw)
	if err != nil {
		errs.add(p, err)
		return events.App{}, false
	}
	rawID, ok := value[string](patch, "id")
	if !ok {
		errs.typeErrs.add(p+"/id", errPathMissing)
		return events.App{}, false
	}
	var idErrs fieldErrs
	id, bad := normalizeAppID(resolvePath(group, rawID))
	idErrs.add("/id", bad...)
	if len(bad) == 0 && parentOf(id) != group {
		idErrs.add("/id", fmt.Sprintf(fmtNotChild, id, group))
	}
	app, err := finish(patch.applyTo(defaultApp(id)), patch, idErrs, lim)
	if err != nil {
		errs.add(p, err)
		return events.App{}, false
	}
	return app, true
}

// add files err's details under path p.
func (g *groupErrs) add(p string, err error) {
	var (
		badJSON *InvalidJSONError
		invalid *ValidationError
	)
	prefix := func(d []FieldErrors) fieldErrs {
		var out fieldErrs
		for _, fe := range d {
			out.add(p+strings.TrimSuffix(fe.Path, "/"), fe.Errors...)
		}
		return out
	}
	switch {
	case asError(err, &badJSON):
		g.typeErrs.merge(prefix(badJSON.Details))
	case asError(err, &invalid):
		g.invalid.merge(prefix(invalid.Details))
	default:
		g.invalid.add(p, err.Error())
	}
}

func pathOr(p string) string {
	if p == "" {
		return "/"
	}
	return p
}
