package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/atollhq/atoll/internal/tlsfiles"
	"github.com/atollhq/atoll/master"
)

// envHTTPCredentials holds "user:password" for the API: what `atoll master`
// and `atoll dev` require, and what the CLI sends.
const envHTTPCredentials = "ATOLL_HTTP_CREDENTIALS"

// apiSecurityFlags are the flags of the master's HTTP API security, on
// `atoll master` and `atoll dev`.
type apiSecurityFlags struct {
	credentials     string // --http-credentials (master only: visible in ps)
	credentialsFile string
	corsOrigins     string
	tlsCert, tlsKey string
	tlsCA           string
}

// register adds the flags; withArg adds --http-credentials too, the
// Marathon-compatible one that shows the secret to anyone running ps.
func (f *apiSecurityFlags) register(fs *flag.FlagSet, withArg bool) {
	if withArg {
		fs.StringVar(&f.credentials, "http-credentials", "", "user:password every API call but /ping and /master/health needs (Marathon's --http_credentials); "+
			"visible to every local user in ps: prefer --http-credentials-file or $"+envHTTPCredentials)
	}
	fs.StringVar(&f.credentialsFile, "http-credentials-file", "", "file whose first line is the user:password every API call but /ping and /master/health needs (mode 0600); default $"+envHTTPCredentials)
	fs.StringVar(&f.corsOrigins, "http-cors-origin", "", "comma-separated origins (https://host[:port]) whose web pages may call the API: they get CORS headers (Marathon's --access_control_allow_origin); others none")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve the API over HTTPS on the --http address, with --tls-key")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM CA that verifies the leader's certificate when a standby forwards to it (default: the system's roots)")
}

// apiSecurity is what the flags resolve to.
type apiSecurity struct {
	credentials string // "" none
	// source says where the credentials came from, for the log.
	source      string
	corsOrigins []string
	tls         *tls.Config // nil: plain HTTP
	peerTLS     *tls.Config // verifies other masters (and atoll dev's own calls)
}

// resolve reads the files the flags name. getenv is os.Getenv outside
// tests; warnings (a readable credentials file, a secret on the command
// line) go to log.
func (f *apiSecurityFlags) resolve(getenv func(string) string, log *slog.Logger) (apiSecurity, error) {
	var s apiSecurity
	switch {
	case f.credentials != "" && f.credentialsFile != "":
		return s, errors.New("--http-credentials and --http-credentials-file: give one")
	case f.credentials != "":
		s.credentials, s.source = f.credentials, "--http-credentials"
		log.Warn("HTTP credentials given on the command line, where every local user can read them (ps); use --http-credentials-file or " + envHTTPCredentials)
	case f.credentialsFile != "":
		creds, warn, err := readCredentialsFile(f.credentialsFile)
		if err != nil {
			return s, err
		}
		if warn != "" {
			log.Warn(warn, "file", f.credentialsFile)
		}
		s.credentials, s.source = creds, f.credentialsFile
	case getenv(envHTTPCredentials) != "":
		s.credentials, s.source = getenv(envHTTPCredentials), "$"+envHTTPCredentials
	}
	if s.credentials != "" {
		if _, _, err := master.ParseHTTPCredentials(s.credentials); err != nil {
			return s, fmt.Errorf("%s: %w", s.source, err)
		}
	}
	for _, o := range strings.Split(f.corsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			s.corsOrigins = append(s.corsOrigins, o)
		}
	}
	if f.tlsCert != "" || f.tlsKey != "" {
		cfg, err := tlsfiles.Server(f.tlsCert, f.tlsKey)
		if err != nil {
			return s, err
		}
		s.tls = cfg
	} else if f.tlsCA != "" {
		return s, errors.New("--tls-ca is for an API served over HTTPS: give --tls-cert and --tls-key too")
	}
	if s.tls != nil {
		cfg, err := tlsfiles.Client(f.tlsCA)
		if err != nil {
			return s, err
		}
		s.peerTLS = cfg
	}
	return s, nil
}

// readCredentialsFile reads "user:password" from the first line of path.
// warn is set when others than the owner may read or change the file.
func readCredentialsFile(path string) (creds, warn string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("HTTP credentials file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", "", fmt.Errorf("HTTP credentials file %s is not a regular file", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("HTTP credentials file: %w", err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	creds = strings.TrimRight(string(line), "\r")
	if creds == "" {
		return "", "", fmt.Errorf("HTTP credentials file %s: the first line is empty; want user:password", path)
	}
	if _, _, err := master.ParseHTTPCredentials(creds); err != nil {
		return "", "", fmt.Errorf("HTTP credentials file %s: %w", path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		warn = fmt.Sprintf("HTTP credentials file is open to other users (mode %04o): chmod 600 it", perm)
	}
	return creds, warn, nil
}
