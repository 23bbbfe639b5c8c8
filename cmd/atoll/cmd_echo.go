package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/atollhq/atoll/agent/echo"
)

func runEcho(ctx context.Context, args []string, _, stderr io.Writer) int {
	cfg := echo.ConfigFromEnv(os.Getenv)
	fs := flag.NewFlagSet("atoll echo", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "listen", cfg.Addr, "address to listen on (default $HOST:$PORT0)")
	fs.DurationVar(&cfg.UnhealthyFor, "unhealthy-for", cfg.UnhealthyFor, "answer /health with 500 for this long after starting (default $ECHO_UNHEALTHY_FOR)")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	cfg.Log = newLogger(stderr, "info").With("component", "echo")
	if err := echo.Run(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, "atoll echo:", err)
		return 1
	}
	return 0
}
