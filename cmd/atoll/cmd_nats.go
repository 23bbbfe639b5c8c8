package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/atollhq/atoll/events/embedded"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/tlsfiles"
)

// runNATS runs the embedded NATS server: standalone, or one node of a
// cluster with --cluster-listen and --routes (the real server's routing).
// Authentication is always on: the server trusts the operator and accounts
// in --auth-dir and nothing else.
func runNATS(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll nats", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4222", "address for NATS clients")
	name := fs.String("name", "", "this server's name, unique in the cluster (default: generated)")
	clusterName := fs.String("cluster-name", embedded.DefaultClusterName, "the cluster's name, the same on every node")
	clusterListen := fs.String("cluster-listen", "", `address for routes from the other nodes, e.g. "0.0.0.0:6222" ("" runs standalone)`)
	routes := fs.String("routes", "", "the nodes' route URLs, comma separated, e.g. nats://a:6222,nats://b:6222 (this node may be listed)")
	authDir := fs.String("auth-dir", envOr("ATOLL_AUTH_DIR", defaultAuthDir), "folder with operator.jwt, system.jwt and account.jwt from `atoll creds init` (only these public files are needed)")
	resolverDir := fs.String("resolver-dir", "", "folder where the server keeps account JWTs and pushed revocations (default: <auth-dir>/resolver)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (the server's notices, warnings and errors, refused clients among them)")
	var tlsFiles tlsfiles.Files
	fs.StringVar(&tlsFiles.Cert, "tls-cert", "", "server certificate: clients must use TLS")
	fs.StringVar(&tlsFiles.Key, "tls-key", "", "key of --tls-cert")
	fs.StringVar(&tlsFiles.CA, "tls-ca", "", "CA that clients' and routes' certificates must be signed by (mTLS); with --cluster-listen, routes verify each other with it")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	trust, err := natsauth.LoadServerTrust(*authDir)
	if err != nil {
		fmt.Fprintf(stderr, "atoll nats: %v\n(authentication is always on: run `atoll creds init --dir %s` first, or give --auth-dir)\n", err, *authDir)
		return 2
	}
	trust.ResolverDir = *resolverDir
	if trust.ResolverDir == "" {
		trust.ResolverDir = filepath.Join(*authDir, "resolver")
	}
	cfg := embedded.Config{
		Log:    newLogger(stderr, *logLevel).With("component", "nats"),
		Listen: *listen, Name: *name, ClusterName: *clusterName,
		ClusterListen: *clusterListen, Routes: embedded.ParseRoutes(*routes), Trust: &trust,
	}
	if !tlsFiles.Empty() {
		if cfg.TLS, err = tlsFiles.ServerConfig(); err != nil {
			fmt.Fprintln(stderr, "atoll nats:", err)
			return 2
		}
	} else if *clusterListen != "" {
		fmt.Fprintln(stderr, "atoll nats: warning: routes without --tls-cert/--tls-key/--tls-ca are not authenticated: any host that reaches", *clusterListen, "can join the cluster")
	}
	srv, err := embedded.StartConfig(cfg)
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
