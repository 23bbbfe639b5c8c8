package master

import (
	"encoding/json"
	"errors"
	"net/http"
)

// POST /api/v1: the one call of Mesos's operator API that atoll's model
// needs, MARK_AGENT_GONE, in Mesos's JSON:
//
//	{"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "<id>"}}}
//
// Other call types are refused with 400, as Mesos refuses calls it does
// not know.
type operatorCall struct {
	Type          string `json:"type"`
	MarkAgentGone *struct {
		AgentID struct {
			Value string `json:"value"`
		} `json:"agent_id"`
	} `json:"mark_agent_gone"`
}

func (m *Master) postOperatorCall(w http.ResponseWriter, r *http.Request) {
	var call operatorCall
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&call); err != nil {
		writeMessage(w, http.StatusBadRequest, "Failed to parse body into Call: "+err.Error())
		return
	}
	if call.Type != "MARK_AGENT_GONE" {
		writeMessage(w, http.StatusBadRequest, "Unsupported call type "+call.Type+"; atoll supports MARK_AGENT_GONE")
		return
	}
	if call.MarkAgentGone == nil || call.MarkAgentGone.AgentID.Value == "" {
		writeMessage(w, http.StatusBadRequest, "Expecting 'mark_agent_gone.agent_id.value' to be present")
		return
	}
	switch err := m.markAgentGone(call.MarkAgentGone.AgentID.Value); {
	case errors.Is(err, errAgentNotFound):
		writeMessage(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrNotLeader):
		writeMessage(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		writeMessage(w, http.StatusInternalServerError, err.Error())
	default:
		w.WriteHeader(http.StatusOK)
	}
}
