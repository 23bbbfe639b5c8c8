package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/atollhq/atoll/events/embedded"
)

// runNATS runs the embedded NATS server: standalone, or one node of a
// cluster with --cluster-listen and --routes (the real server's routing).
func runNATS(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll nats", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4222", "address for NATS clients")
	name := fs.String("name", "", "this server's name, unique in the cluster (default: generated)")
	clusterName := fs.String("cluster-name", embedded.DefaultClusterName, "the cluster's name, the same on every node")
	clusterListen := fs.String("cluster-listen", "", `address for routes from the other nodes, e.g. "0.0.0.0:6222" ("" runs standalone)`)
	routes := fs.String("routes", "", "the nodes' route URLs, comma separated, e.g. nats://a:6222,nats://b:6222 (this node may be listed)")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	srv, err := embedded.StartConfig(embedded.Config{
		Listen: *listen, Name: *name, ClusterName: *clusterName,
		ClusterListen: *clusterListen, Routes: embedded.ParseRoutes(*routes),
	})
	if err != nil {
		fmt.Fprintln(stderr, "atoll nats:", err)
		return 1
	}
	if *clusterListen != "" {
		fmt.Fprintln(stderr, "nats listening on", srv.ClientURL(), "routes on", srv.ClusterAddr(), "cluster", *clusterName)
	} else {
		fmt.Fprintln(stderr, "nats listening on", srv.ClientURL())
	}
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return 0
}
