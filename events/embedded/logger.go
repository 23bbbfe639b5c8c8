package embedded

import (
	"fmt"
	"log/slog"
)

// slogger hands the NATS server's log to slog: its notices, warnings and
// errors — a refused credential, a permission violation ("Publish
// Violation", "Subscription Violation" with the user's name), a route that
// failed — are where an operator looks for them. Debug and trace stay off.
type slogger struct{ log *slog.Logger }

func (l slogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l slogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l slogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l slogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l slogger) Debugf(string, ...any)           {}
func (l slogger) Tracef(string, ...any)           {}
