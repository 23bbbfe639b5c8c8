package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/atollhq/atoll/events/embedded"
)

func runNATS(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll nats", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4222", "address for NATS clients")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	srv, err := embedded.Start(*listen)
	if err != nil {
		fmt.Fprintln(stderr, "atoll nats:", err)
		return 1
	}
	fmt.Fprintln(stderr, "nats listening on", srv.ClientURL())
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return 0
}
