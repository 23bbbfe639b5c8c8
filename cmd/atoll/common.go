package main

import (
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
)

// natsFlags are the connection flags every NATS client command shares.
type natsFlags struct {
	url, creds, ca, prefix string
}

func (f *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "nats", envOr("ATOLL_NATS", "nats://127.0.0.1:4222"), "NATS server URL(s), comma separated (env ATOLL_NATS)")
	fs.StringVar(&f.creds, "nats-creds", "", "NATS credentials file")
	fs.StringVar(&f.ca, "nats-tls-ca", "", "CA file to verify the NATS server's TLS certificate")
	fs.StringVar(&f.prefix, "subject-prefix", events.DefaultPrefix, "NATS subject prefix")
}

func (f *natsFlags) subjects() events.Subjects { return events.Subjects{Prefix: f.prefix} }

// connect dials NATS and keeps reconnecting for as long as the process
// lives: a NATS restart must not end a master or an agent.
func (f *natsFlags) connect(name string, log *slog.Logger) (*nats.Conn, error) {
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
	}
	if f.creds != "" {
		opts = append(opts, nats.UserCredentials(f.creds))
	}
	if f.ca != "" {
		opts = append(opts, nats.RootCAs(f.ca))
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
