// Package echo is atoll's demo server (`atoll echo`): it tells who answered,
// which makes DNS and load-balancer behaviour visible with curl.
package echo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Config configures the echo server.
type Config struct {
	// Addr is where to listen, host:port.
	Addr    string
	TaskID  string
	AppID   string
	Host    string
	Version string
	// UnhealthyFor makes GET /health answer 500 for this long after the
	// start, like a service warming up (ECHO_UNHEALTHY_FOR).
	UnhealthyFor time.Duration
	Log          *slog.Logger
}

// ConfigFromEnv builds a Config from the environment an atoll (or Mesos /
// Marathon) task gets: Addr is HOST:PORT0 (default 127.0.0.1:8000), and
// MESOS_TASK_ID, MARATHON_APP_ID, MARATHON_APP_VERSION name the instance.
func ConfigFromEnv(getenv func(string) string) Config {
	host := getenv("HOST")
	listenHost := host
	if listenHost == "" {
		listenHost = "127.0.0.1"
	}
	port := getenv("PORT0")
	if port == "" {
		port = "8000"
	}
	unhealthy, _ := time.ParseDuration(getenv("ECHO_UNHEALTHY_FOR"))
	return Config{
		UnhealthyFor: unhealthy,
		Addr:         net.JoinHostPort(listenHost, port),
		TaskID:       getenv("MESOS_TASK_ID"),
		AppID:        getenv("MARATHON_APP_ID"),
		Host:         host,
		Version:      getenv("MARATHON_APP_VERSION"),
	}
}

// Reply is the JSON body of GET /.
type Reply struct {
	TaskID  string `json:"taskId"`
	AppID   string `json:"appId"`
	Host    string `json:"host"`
	Port    int    `json:"port"`
	Version string `json:"version"`
}

// Run listens on cfg.Addr and serves until ctx ends, then shuts down
// gracefully.
func Run(ctx context.Context, cfg Config) error {
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:8000"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	return Serve(ctx, ln, cfg)
}

// Serve is Run on a listener the caller opened; it closes ln.
func Serve(ctx context.Context, ln net.Listener, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	reply := Reply{TaskID: cfg.TaskID, AppID: cfg.AppID, Host: cfg.Host, Version: cfg.Version}
	if host, port, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		reply.Port, _ = strconv.Atoi(port)
		if reply.Host == "" {
			reply.Host = host
		}
	}
	srv := &http.Server{
		Handler:           Handler(reply, &Health{Until: time.Now().Add(cfg.UnhealthyFor)}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("echo server listening", "addr", ln.Addr().String(), "task", cfg.TaskID, "app", cfg.AppID)

	select {
	case err := <-errc:
		return fmt.Errorf("echo: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("echo: shutdown: %w", err)
	}
	return nil
}

// Health is what GET /health answers: 500 before Until or while failing
// (POST /health/fail sets it, POST /health/ok clears it), else 200.
type Health struct {
	Until   time.Time
	failing atomic.Bool
}

func (h *Health) ok(now time.Time) bool { return !now.Before(h.Until) && !h.failing.Load() }

// Handler serves GET / (the reply as JSON), GET /health and the switches
// that make /health fail, for trying out health checks.
func Handler(reply Reply, health *Health) http.Handler {
	body, _ := json.Marshal(reply)
	body = append(body, '\n')
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !health.ok(time.Now()) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("unhealthy\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("POST /health/fail", func(w http.ResponseWriter, r *http.Request) { health.failing.Store(true) })
	mux.HandleFunc("POST /health/ok", func(w http.ResponseWriter, r *http.Request) { health.failing.Store(false) })
	return mux
}
