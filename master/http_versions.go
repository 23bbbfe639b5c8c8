package master

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// Versions and rollback over HTTP, as Marathon's AppVersionsResource and
// AppHelpers have them: GET /v2/apps/{id}/versions lists an app's kept
// versions, newest first; GET /v2/apps/{id}/versions/{v} is the bare
// definition of one; PUT (or PATCH) /v2/apps/{id} with {"version": V}
// deploys that definition again. Reads come from the read view.

const msgRollbackAlone = "The 'version' field may only be combined with the 'id' field."

// getAppVersions is GET /v2/apps/{id}/versions.
func (m *Master) getAppVersions(w http.ResponseWriter, r *http.Request, id string) {
	e, ok := m.reads.load().find(id)
	if !ok || e.app == nil {
		m.writeError(w, r, appNotFound(id))
		return
	}
	out := struct {
		Versions []jsonTime `json:"versions"`
	}{Versions: make([]jsonTime, 0, len(e.versions))}
	for _, a := range slices.Backward(e.versions) {
		out.Versions = append(out.Versions, jsonTime(a.Version))
	}
	if len(out.Versions) == 0 { // an app from before versions were kept
		out.Versions = append(out.Versions, jsonTime(e.app.Version))
	}
	writeJSON(w, http.StatusOK, out)
}

// getAppVersion is GET /v2/apps/{id}/versions/{v}: the definition alone,
// without task counts or deployments.
func (m *Master) getAppVersion(w http.ResponseWriter, r *http.Request, id, version string) {
	e, ok := m.reads.load().find(id)
	if !ok || e.app == nil {
		m.writeError(w, r, appNotFound(id))
		return
	}
	v, err := time.Parse(time.RFC3339Nano, version)
	if err != nil {
		m.writeError(w, r, versionNotFound(id, version))
		return
	}
	h := e.versions
	if len(h) == 0 {
		h = append(h, *e.app)
	}
	a, ok := versionIn(h, v)
	if !ok {
		m.writeError(w, r, versionNotFound(id, version))
		return
	}
	writeJSON(w, http.StatusOK, appDefinitionOf(a))
}

// rollbackOf reads a PUT or PATCH body that asks for a rollback: it has a
// "version", and then nothing else but the "id" (status Marathon writes
// into an app's JSON aside). ok is false for any other body.
func rollbackOf(body []byte) (version time.Time, ok bool, err error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return time.Time{}, false, nil // decodeAppPatch says what is wrong
	}
	raw, has := obj["version"]
	if !has || isNull(raw) {
		return time.Time{}, false, nil
	}
	var errs fieldErrs
	var text string
	if json.Unmarshal(raw, &text) != nil {
		return time.Time{}, true, &InvalidJSONError{Message: msgInvalidJSON,
			Details: []FieldErrors{{Path: "/version", Errors: []string{errExpString}}}}
	}
	version, perr := time.Parse(time.RFC3339Nano, text)
	if perr != nil {
		errs.add("/version", "must be a version as /v2/apps/{id}/versions lists them (ISO 8601, e.g. 2026-12-02T15:04:05.000Z)")
	}
	for k, v := range obj {
		if k == "id" || k == "version" || isNull(v) || isOutputOnly(k) {
			continue
		}
		errs.add("/", msgRollbackAlone)
		break
	}
	if len(errs) > 0 {
		return time.Time{}, true, &ValidationError{Details: errs}
	}
	return version, true, nil
}

// rolledBack answers a PUT or PATCH whose body asks for a rollback, and
// says whether it did.
func (m *Master) rolledBack(w http.ResponseWriter, r *http.Request, body []byte, id string, force bool) bool {
	version, ok, err := rollbackOf(body)
	if !ok {
		return false
	}
	if err == nil {
		var ch Change
		if ch, err = m.RollbackApp(id, version, force, originOf(r)); err == nil {
			writeDeployment(w, http.StatusOK, ch)
			return true
		}
	}
	m.writeError(w, r, err)
	return true
}

// isOutputOnly says whether key is status Marathon writes into an app's
// JSON (appSchema).
func isOutputOnly(key string) bool {
	e, ok := appPropOf(key)
	return ok && e.rule == fieldOutputOnly
}
