package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/tlsfiles"
)

// natsFlags are the connection flags every NATS client command shares.
type natsFlags struct {
	url, creds, prefix string
	tls                tlsfiles.Files
	// identity is the credential's, once read (connect, or readIdentity).
	identity *natsauth.Identity
}

func (f *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "nats", envOr("ATOLL_NATS", "nats://127.0.0.1:4222"), "NATS server URL(s), comma separated (env ATOLL_NATS)")
	fs.StringVar(&f.creds, "nats-creds", os.Getenv("ATOLL_NATS_CREDS"), "NATS credentials file of this node and role, from `atoll creds` (env ATOLL_NATS_CREDS); required")
	fs.StringVar(&f.tls.CA, "nats-tls-ca", os.Getenv("ATOLL_NATS_TLS_CA"), "CA file to verify the NATS server's TLS certificate (env ATOLL_NATS_TLS_CA)")
	fs.StringVar(&f.tls.Cert, "nats-tls-cert", "", "client certificate for NATS servers that require one (mTLS)")
	fs.StringVar(&f.tls.Key, "nats-tls-key", "", "key of --nats-tls-cert")
	fs.StringVar(&f.prefix, "subject-prefix", events.DefaultPrefix, "NATS subject prefix")
}

func (f *natsFlags) subjects() events.Subjects { return events.Subjects{Prefix: f.prefix} }

// readIdentity reads the credential and checks that it is for role and
// this subject prefix: NATS would refuse the wrong one's every message,
// so refuse it up front with a clear error.
func (f *natsFlags) readIdentity(role natsauth.Role) (natsauth.Identity, error) {
	if f.identity != nil {
		return *f.identity, nil
	}
	if f.creds == "" {
		return natsauth.Identity{}, fmt.Errorf("no NATS credentials: NATS authentication is always on; give --nats-creds FILE (`atoll creds %s --name NAME` writes one)", role)
	}
	id, err := natsauth.ReadCreds(f.creds)
	if err != nil {
		return natsauth.Identity{}, err
	}
	if id.Role != role {
		return natsauth.Identity{}, fmt.Errorf("nats credentials %s are for a %s (%s), not a %s", f.creds, id.Role, id.Name, role)
	}
	if id.Prefix != f.prefix {
		return natsauth.Identity{}, fmt.Errorf("nats credentials %s are for subject prefix %q, not %q", f.creds, id.Prefix, f.prefix)
	}
	f.identity = &id
	return id, nil
}

// dial is connect for a part that runs under ctx: the returned context
// ends, with the reason as its cause (natsCause), when NATS closes the
// connection for good — a credential refused, revoked or expired, after
// which nats.go stops reconnecting. A part must not run on as if
// connected.
func (f *natsFlags) dial(ctx context.Context, name string, role natsauth.Role, log *slog.Logger) (context.Context, *nats.Conn, error) {
	ctx, fail := context.WithCancelCause(ctx)
	nc, err := f.connect(name, role, log, nats.ClosedHandler(func(nc *nats.Conn) {
		if err := nc.LastError(); err != nil {
			log.Error("nats connection closed", "as", string(role)+" "+f.identity.Name, "err", err)
			fail(fmt.Errorf("nats closed the connection of %s %s: %w", role, f.identity.Name, err))
		}
	}))
	if err != nil {
		fail(err)
		return ctx, nil, err
	}
	return ctx, nc, nil
}

// natsCause is err, or the reason dial's context ended if it ended for one.
func natsCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// connect dials NATS as the credential of role and keeps reconnecting for
// as long as the process lives: a NATS restart must not end a master or an
// agent.
func (f *natsFlags) connect(name string, role natsauth.Role, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	id, err := f.readIdentity(role)
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		// The server's refusals (a permission violation, a revoked or
		// expired credential) arrive asynchronously: say them.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats refused", "as", string(id.Role)+" "+id.Name, "subject", subject, "err", err)
		}),
	}
	opts = append(opts, extra...)
	opts = append(opts, id.Options()...)
	tlsCfg, err := f.tls.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if tlsCfg != nil {
		opts = append(opts, nats.Secure(tlsCfg))
	}
	nc, err := nats.Connect(f.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", redact(f.url), err)
	}
	return nc, nil
}

// redact hides passwords in URLs before they reach a log.
func redact(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// binDir is the folder of the running atoll binary, put first on tasks'
// PATH so that `atoll echo` works as a task command.
func binDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Dir(exe)
}

// parseFlags parses and reports errors the way every command does.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	return fs.Parse(args) == nil
}
