package master

import (
	"errors"
	"fmt"
	"strings"
)

// Errors the API maps onto Marathon's status codes and bodies.

// NotFoundError is a 404.
type NotFoundError struct{ Message string }

func (e *NotFoundError) Error() string { return e.Message }

func appNotFound(id string) error {
	return &NotFoundError{Message: fmt.Sprintf("App '%s' does not exist", id)}
}

// ConflictError is a 409 that is not a lock, e.g. an existing app.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }

// UnprocessableError is Marathon's 422 with a message alone, as its
// exception mapper answers an IllegalArgumentException.
type UnprocessableError struct{ Message string }

func (e *UnprocessableError) Error() string { return e.Message }

// LockedError is Marathon's 409 for an app that a deployment holds.
type LockedError struct{ Deployments []string }

func (e *LockedError) Error() string {
	return fmt.Sprintf("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/%s'.",
		strings.Join(e.Deployments, ","))
}

// ValidationError is Marathon's 422 with details per JSON path.
type ValidationError struct {
	Details []FieldErrors
}

// FieldErrors are the errors for one JSON path.
type FieldErrors struct {
	Path   string   `json:"path"`
	Errors []string `json:"errors"`
}

func (e *ValidationError) Error() string {
	var parts []string
	for _, d := range e.Details {
		parts = append(parts, d.Path+": "+strings.Join(d.Errors, "; "))
	}
	return "Object is not valid: " + strings.Join(parts, ", ")
}

// IsNotLeader reports whether err says this master does not lead.
func IsNotLeader(err error) bool { return errors.Is(err, ErrNotLeader) }
