package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atollhq/atoll/events"
	"github.com/atollhq/atoll/internal/natsauth"
	"github.com/atollhq/atoll/internal/pki"
	"github.com/atollhq/atoll/internal/tlsfiles"
)

// defaultAuthDir is where `atoll dev` keeps its authority, so that `atoll
// creds` after `make run` enrols nodes into the dev cluster.
const defaultAuthDir = ".atoll/auth"

// runCreds is `atoll creds`: the cluster's authority (operator, account,
// CA) and the credentials it issues, one per role and node (DESIGN.md §10).
func runCreds(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, credsUsage)
		return 2
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "init":
		return credsInit(rest, stdout, stderr)
	case "list":
		return credsList(rest, stdout, stderr)
	case "revoke":
		return credsRevoke(rest, stdout, stderr)
	case "tls":
		return credsTLS(rest, stdout, stderr)
	case "push":
		return credsPush(rest, stdout, stderr)
	}
	role, err := natsauth.ParseRole(sub)
	if err != nil {
		fmt.Fprintf(stderr, "atoll creds: %v\n\n%s", err, credsUsage)
		return 2
	}
	return credsIssue(role, rest, stdout, stderr)
}

const credsUsage = `usage:
  atoll creds init [--dir DIR] [--name CLUSTER]        make the cluster's operator, account and CA
  atoll creds master|agent|sidecar|observer --name NAME [--out FILE]
                                                       issue a NATS credential (for agents and sidecars
                                                       NAME is the node's hostname)
  atoll creds revoke --name NAME [--role ROLE] | --key KEY  [--nats URL]
                                                       revoke a node's credentials (or the one with KEY,
                                                       to rotate) and push the account to the NATS servers
  atoll creds push --nats URL                          push the account (its revocations) to the NATS
                                                       servers again, e.g. after a failed push
  atoll creds list                                     the credentials issued
  atoll creds tls --name NAME --hosts H1,IP1 [--out-cert F --out-key F]
                                                       a TLS certificate signed by the cluster's CA
Every command takes --dir (default $ATOLL_AUTH_DIR or ` + defaultAuthDir + `).
`

func authDirFlag(fs *flag.FlagSet) *string {
	return fs.String("dir", envOr("ATOLL_AUTH_DIR", defaultAuthDir), "the authority's folder (secrets: keep it on the operator's machine)")
}

func credsInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll creds init", flag.ContinueOnError)
	dir := authDirFlag(fs)
	name := fs.String("name", "atoll", "the cluster's name (operator and account names)")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if _, err := natsauth.CreateAuthority(*dir, *name); err != nil {
		fmt.Fprintln(stderr, "atoll creds init:", err)
		return 1
	}
	if _, err := pki.OpenOrCreateCA(*dir, *name); err != nil {
		fmt.Fprintln(stderr, "atoll creds init:", err)
		return 1
	}
	fmt.Fprintf(stdout, `authority made in %[1]s
  NATS servers need only %[1]s/{operator,system,account}.jwt (atoll nats --auth-dir)
  issue credentials:  atoll creds agent --name HOSTNAME --dir %[1]s
  TLS certificates:   atoll creds tls --name HOST --hosts HOST,IP --dir %[1]s
`, *dir)
	return 0
}

func credsIssue(role natsauth.Role, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll creds "+string(role), flag.ContinueOnError)
	dir := authDirFlag(fs)
	name := fs.String("name", "", "the node's hostname (agent, sidecar) or a name for this "+string(role))
	out := fs.String("out", "", "creds file to write (default: <dir>/creds/<role>-<name>.creds)")
	prefix := fs.String("subject-prefix", events.DefaultPrefix, "NATS subject prefix of the cluster")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if *name == "" {
		fmt.Fprintln(stderr, "atoll creds: --name is required")
		return 2
	}
	auth, err := natsauth.OpenAuthority(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "atoll creds:", err)
		return 1
	}
	path := *out
	if path == "" {
		path = credsPath(*dir, role, *name)
	}
	if err := issueCredsFile(auth, events.Subjects{Prefix: *prefix}, role, *name, path); err != nil {
		fmt.Fprintln(stderr, "atoll creds:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s credential for %s written to %s (mode 0600): give it with --nats-creds\n", role, *name, path)
	return 0
}

// credsPath is where a credential is kept in an authority's folder.
func credsPath(dir string, role natsauth.Role, name string) string {
	return filepath.Join(dir, "creds", string(role)+"-"+name+".creds")
}

func issueCredsFile(auth *natsauth.Authority, subj events.Subjects, role natsauth.Role, name, path string) error {
	creds, err := auth.Issue(subj, role, name)
	if err != nil {
		return err
	}
	return natsauth.WriteCreds(path, creds)
}

func credsRevoke(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll creds revoke", flag.ContinueOnError)
	dir := authDirFlag(fs)
	name := fs.String("name", "", "the name whose credentials to revoke (every one issued for it)")
	key := fs.String("key", "", "revoke only the credential with this public key (from `atoll creds list`): rotation, after the node has its new one")
	roleFlag := fs.String("role", "", "only this role's (default: every role of that name)")
	url, tlsFiles := pushFlags(fs)
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if (*name == "") == (*key == "") || (*key != "" && *roleFlag != "") {
		fmt.Fprintln(stderr, "atoll creds revoke: give either --name (with --role if you like) or --key")
		return 2
	}
	var role natsauth.Role
	if *roleFlag != "" {
		r, err := natsauth.ParseRole(*roleFlag)
		if err != nil {
			fmt.Fprintln(stderr, "atoll creds revoke:", err)
			return 2
		}
		role = r
	}
	auth, err := natsauth.OpenAuthority(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "atoll creds revoke:", err)
		return 1
	}
	if *key != "" {
		is, err := auth.RevokeKey(*key)
		if err != nil {
			fmt.Fprintln(stderr, "atoll creds revoke:", err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked the %s credential of %s issued %s; account re-signed in %s\n", is.Role, is.Name, is.IssuedAt.Format(time.RFC3339), *dir)
	} else {
		n, err := auth.Revoke(role, *name)
		if err != nil {
			fmt.Fprintln(stderr, "atoll creds revoke:", err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked %d credential(s) of %s; account re-signed in %s\n", n, *name, *dir)
	}
	if *url == "" {
		fmt.Fprintln(stdout, "not pushed: run `atoll creds push --nats URL` (or restart every atoll nats with the new account.jwt)")
		return 0
	}
	return pushAccount(auth, *url, *tlsFiles, "atoll creds revoke", stdout, stderr)
}

// credsPush sends the account as it is in the folder to the NATS servers:
// the retry of a revocation whose push failed.
func credsPush(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll creds push", flag.ContinueOnError)
	dir := authDirFlag(fs)
	url, tlsFiles := pushFlags(fs)
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if *url == "" {
		fmt.Fprintln(stderr, "atoll creds push: --nats is required")
		return 2
	}
	auth, err := natsauth.OpenAuthority(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "atoll creds push:", err)
		return 1
	}
	return pushAccount(auth, *url, *tlsFiles, "atoll creds push", stdout, stderr)
}

// pushFlags are where and how `atoll creds revoke|push` reach a NATS
// server: its URL and the client's TLS files.
func pushFlags(fs *flag.FlagSet) (*string, *tlsfiles.Files) {
	url := fs.String("nats", envOr("ATOLL_NATS", ""), "NATS server to push the account to (every server of a cluster learns it)")
	var f tlsfiles.Files
	fs.StringVar(&f.CA, "nats-tls-ca", os.Getenv("ATOLL_NATS_TLS_CA"), "CA of the NATS server's certificate")
	fs.StringVar(&f.Cert, "nats-tls-cert", "", "client certificate (mTLS)")
	fs.StringVar(&f.Key, "nats-tls-key", "", "key of --nats-tls-cert")
	return url, &f
}

func pushAccount(auth *natsauth.Authority, url string, tlsFiles tlsfiles.Files, cmd string, stdout, stderr io.Writer) int {
	var opts []nats.Option
	tlsCfg, err := tlsFiles.ClientConfig()
	if err != nil {
		fmt.Fprintln(stderr, cmd+":", err)
		return 2
	}
	if tlsCfg != nil {
		opts = append(opts, nats.Secure(tlsCfg))
	}
	if err := auth.Push(url, opts...); err != nil {
		fmt.Fprintln(stderr, cmd+":", err, "(the revocation is saved: retry with `atoll creds push`)")
		return 1
	}
	fmt.Fprintf(stdout, "pushed to %s: connections with revoked credentials are closed\n", redact(url))
	return 0
}

func credsList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll creds list", flag.ContinueOnError)
	dir := authDirFlag(fs)
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	auth, err := natsauth.OpenAuthority(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "atoll creds list:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tNAME\tISSUED\tREVOKED\tKEY")
	for _, is := range auth.Issued() {
		revoked := "-"
		if !is.RevokedAt.IsZero() {
			revoked = is.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", is.Role, is.Name, is.IssuedAt.Format(time.RFC3339), revoked, is.PublicKey)
	}
	_ = tw.Flush()
	return 0
}

func credsTLS(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("atoll creds tls", flag.ContinueOnError)
	dir := authDirFlag(fs)
	name := fs.String("name", "", "the certificate's common name")
	hosts := fs.String("hosts", "", "DNS names and IPs it is valid for, comma separated")
	certOut := fs.String("out-cert", "", "certificate file (default <dir>/tls/<name>.pem)")
	keyOut := fs.String("out-key", "", "key file (default <dir>/tls/<name>-key.pem)")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if *name == "" || *hosts == "" {
		fmt.Fprintln(stderr, "atoll creds tls: --name and --hosts are required")
		return 2
	}
	ca, err := pki.OpenOrCreateCA(*dir, "atoll")
	if err != nil {
		fmt.Fprintln(stderr, "atoll creds tls:", err)
		return 1
	}
	if *certOut == "" {
		*certOut = filepath.Join(*dir, "tls", *name+".pem")
	}
	if *keyOut == "" {
		*keyOut = filepath.Join(*dir, "tls", *name+"-key.pem")
	}
	var hs []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	for _, d := range []string{filepath.Dir(*certOut), filepath.Dir(*keyOut)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			fmt.Fprintln(stderr, "atoll creds tls:", err)
			return 1
		}
	}
	if err := ca.IssueFiles(*name, hs, *certOut, *keyOut); err != nil {
		fmt.Fprintln(stderr, "atoll creds tls:", err)
		return 1
	}
	fmt.Fprintf(stdout, "certificate %s and key %s (CA %s)\n", *certOut, *keyOut, filepath.Join(*dir, pki.CACertFile))
	return 0
}
