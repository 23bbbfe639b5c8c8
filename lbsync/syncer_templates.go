package lbsync

import (
	"fmt"

	"github.com/atollhq/atoll/templates"
)

// A template set can change while the Syncer runs (--templates-dir is
// watched). A new set is tried on the last state first: one that cannot
// render the config is refused and the set in use stays, so membership
// changes and new apps keep flowing. Run refuses it too when `haproxy -c`
// rejects what it renders with no app to blame.

// SetTemplates switches to set, unless rendering the last state with it
// fails as a whole or config-parser rejects the text: then set is refused
// (reported) and the error returned.
// A set that is taken releases the quarantine: the new templates may well
// render the rejected apps differently.
func (s *Syncer) SetTemplates(set *templates.Set) error {
	s.init()
	s.renderMu.Lock()
	defer s.renderMu.Unlock()
	if set == s.templates {
		return nil
	}
	if s.state == nil {
		// Nothing to try the set on yet: the first render will.
		s.templates = set
		s.clearQuarantine()
		s.problems.setGlobal("templates", nil)
		return nil
	}
	next, err := s.render(s.state, set, nil)
	if err == nil {
		// config-parser reads the whole text once per new set: the
		// defaults' lines are the set's, and a set that writes lines
		// HAProxy's grammar does not have is refused before it runs.
		err = Validate(next.Config)
	}
	if err != nil {
		err = fmt.Errorf("template set refused, the previous one stays in use: %w", err)
		s.Metrics.TemplateRefusals.Inc()
		s.problems.setGlobal("templates", err)
		return err
	}
	s.templates = set
	s.clearQuarantine()
	s.problems.setGlobal("templates", nil)
	s.offer(s.state, next)
	return nil
}

// RefuseTemplates reports a template set that could not be loaded (a
// parse error): the set in use stays.
func (s *Syncer) RefuseTemplates(err error) {
	s.init()
	s.Metrics.TemplateRefusals.Inc()
	s.problems.setGlobal("templates", fmt.Errorf("template set refused, the previous one stays in use: %w", err))
}

// revertTemplates refuses bad, whose config `haproxy -c` rejected with no
// app to blame, and renders with good (the set HAProxy serves) again.
func (s *Syncer) revertTemplates(bad, good *templates.Set, cause error) {
	s.Metrics.TemplateRefusals.Inc()
	s.problems.setGlobal("templates", fmt.Errorf("template set refused, the previous one stays in use: %w", stableError(cause)))
	s.renderMu.Lock()
	defer s.renderMu.Unlock()
	if s.templates != bad {
		return // replaced meanwhile
	}
	s.templates = good
	if s.state == nil {
		return // the next state renders with good
	}
	if next, err := s.render(s.state, good, s.quarantined()); err == nil {
		s.offer(s.state, next)
	}
}
