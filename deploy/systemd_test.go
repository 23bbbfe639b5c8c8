package deploy

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/atollhq/atoll/internal/natsauth"
)

// atollBin is bin/atoll built for this package's tests, once.
var atollBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "atoll-deploy-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	atollBin = filepath.Join(dir, "atoll")
	build := exec.Command("go", "build", "-o", atollBin, "../cmd/atoll")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build atoll:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// unit is what the tests read of a systemd unit.
type unit struct {
	execStart []string          // split on spaces, as systemd splits it
	env       map[string]string // Environment=
	creds     map[string]string // LoadCredential= id -> source path
}

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{env: map[string]string{}, creds: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch key {
		case "ExecStart":
			u.execStart = strings.Fields(val)
		case "Environment":
			for _, kv := range strings.Fields(val) {
				k, v, _ := strings.Cut(kv, "=")
				u.env[k] = v
			}
		case "LoadCredential":
			id, src, _ := strings.Cut(val, ":")
			u.creds[id] = src
		}
	}
	return u
}

// readEnvFile reads an /etc/default file as systemd's EnvironmentFile=
// does (KEY=VALUE, optional double quotes, # comments).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is no KEY=VALUE", path, line)
			continue
		}
		env[k] = strings.Trim(v, `"`)
	}
	return env
}

// envVarsRead are the ATOLL_* variables the atoll binary's source reads.
func envVarsRead(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../cmd/atoll/*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"(ATOLL_[A-Z_]+)"`)
	vars := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			vars[m[1]] = true
		}
	}
	return vars
}

// TestExamplesEnrolAndStart enrols the three-region example with its own
// enrol.sh and the real binary, then takes every /etc/default file with
// its systemd unit as systemd would run it on that host (%d and /etc/atoll
// pointing at the host's enrolled folder) and checks: every file a unit
// loads was enrolled for that host, with secrets 0600; every variable set
// is one atoll reads; atoll accepts every flag; each service's credential
// is of its role and named as the service registers (an agent's
// --hostname, a sidecar's --node); every certificate is the CA's and valid
// for the address the others dial.
func TestExamplesEnrolAndStart(t *testing.T) {
	work := t.TempDir()
	auth, out := filepath.Join(work, "auth"), filepath.Join(work, "out")
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	run(nil, atollBin, "creds", "init", "--dir", auth, "--name", "atoll")
	run([]string{"ATOLL=" + atollBin, "ATOLL_AUTH_DIR=" + auth}, "sh", "examples/three-regions/enrol.sh", out)

	vars := envVarsRead(t)
	defaults, err := filepath.Glob("examples/three-regions/*/*/atoll-*")
	if err != nil || len(defaults) != 18 {
		t.Fatalf("%d /etc/default examples (%v), want 18: 3 regions x (master, nats, 2 x (agent, sidecar))", len(defaults), err)
	}
	for _, path := range defaults {
		t.Run(strings.TrimPrefix(path, "examples/three-regions/"), func(t *testing.T) {
			rel, _ := filepath.Rel("examples/three-regions", filepath.Dir(path))
			hostDir := filepath.Join(out, rel)
			command := strings.TrimPrefix(filepath.Base(path), "atoll-")
			u := readUnit(t, filepath.Join("systemd", "atoll-"+command+".service"))
			env := readEnvFile(t, path)

			// Every secret the unit loads was enrolled for this host, 0600;
			// systemd hands it to the service in %d, 0400.
			credsDir := filepath.Join(work, "credentials", rel, command)
			if err := os.MkdirAll(credsDir, 0o700); err != nil {
				t.Fatal(err)
			}
			for id, src := range u.creds {
				if filepath.Dir(src) != "/etc/atoll" {
					t.Errorf("LoadCredential=%s:%s: want a file in /etc/atoll", id, src)
				}
				enrolled := filepath.Join(hostDir, filepath.Base(src))
				fi, err := os.Stat(enrolled)
				if err != nil {
					t.Errorf("the unit loads %s, enrol.sh made none for %s: %v", src, rel, err)
					continue
				} else if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %04o, want 0600", src, fi.Mode().Perm())
				}
				b, err := os.ReadFile(enrolled)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(credsDir, id), b, 0o400); err != nil {
					t.Fatal(err)
				}
			}
			// As systemd runs it on this host: %d is the credentials
			// folder, /etc/atoll the enrolled files, and the default
			// file's variables override Environment=.
			local := strings.NewReplacer("%d", credsDir, "/etc/atoll", hostDir, "/var/lib/atoll", filepath.Join(work, "var", rel))
			all := map[string]string{}
			for k, v := range u.env {
				all[k] = local.Replace(v)
			}
			for k, v := range env {
				all[k] = v
			}
			optsVar := "ATOLL_" + strings.ToUpper(command) + "_OPTS"
			var argv []string
			for _, a := range u.execStart[1:] {
				if a == "$"+optsVar {
					argv = append(argv, strings.Fields(env[optsVar])...)
				} else {
					argv = append(argv, local.Replace(a))
				}
			}
			if u.execStart[0] != "/usr/local/bin/atoll" || argv[0] != command || !slices.Contains(u.execStart, "$"+optsVar) {
				t.Fatalf("ExecStart %v: want /usr/local/bin/atoll %s ... $%s", u.execStart, command, optsVar)
			}
			// Every file named is there (a LoadCredential= missing for a
			// %d path, a file enrol.sh does not make).
			for _, v := range append(slices.Clone(argv), slices.Collect(maps.Values(all))...) {
				if strings.HasPrefix(v, credsDir) || strings.HasPrefix(v, hostDir) {
					if _, err := os.Stat(v); err != nil {
						t.Errorf("the service is given %s, which it would not find: %v", strings.NewReplacer(credsDir, "%d", hostDir, "/etc/atoll").Replace(v), err)
					}
				}
			}
			for k := range all {
				if k != optsVar && !vars[k] {
					t.Errorf("%s is set but atoll reads no such variable", k)
				}
			}
			// atoll takes every flag (-h after them: parse, then usage).
			cmd := exec.Command(atollBin, append(argv, "-h")...)
			for k, v := range all {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			b, _ := cmd.CombinedOutput()
			if first, _, _ := strings.Cut(string(b), "\n"); first != "Usage of atoll "+command+":" {
				t.Errorf("atoll %s does not take the example's flags: %s", strings.Join(argv, " "), first)
			}

			flag := func(name string) string {
				if i := slices.Index(argv, name); i >= 0 && i+1 < len(argv) {
					return argv[i+1]
				}
				return ""
			}
			ca := filepath.Join(hostDir, "ca.pem")
			if command == "nats" {
				if _, err := natsauth.LoadServerTrust(flag("--auth-dir")); err != nil {
					t.Error(err)
				}
				if flag("--tls-ca") == "" {
					t.Error("no --tls-ca: the routes would take any host that reaches them")
				}
				checkCert(t, flag("--tls-cert"), ca, hostOf(t, "tcp://"+flag("--listen")))
				for _, r := range strings.Split(flag("--routes"), ",") {
					checkCert(t, natsNodeCert(t, out, hostOf(t, r)), ca, hostOf(t, r))
				}
				return
			}
			id, err := natsauth.ReadCreds(all["ATOLL_NATS_CREDS"])
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]struct {
				role natsauth.Role
				flag string
			}{"agent": {natsauth.RoleAgent, "--hostname"}, "sidecar": {natsauth.RoleSidecar, "--node"}, "master": {natsauth.RoleMaster, "--hostname"}}[command]
			if id.Role != want.role || id.Name != flag(want.flag) {
				t.Errorf("credential is %s %q; the %s registers as %s %q", id.Role, id.Name, command, want.flag, flag(want.flag))
			}
			if all["ATOLL_NATS_TLS_CA"] != ca {
				t.Errorf("ATOLL_NATS_TLS_CA = %q, want the host's ca.pem", all["ATOLL_NATS_TLS_CA"])
			}
			checkCert(t, flag("--nats-tls-cert"), ca, "")
			// Its own region's NATS node: a connection across regions
			// would hang for minutes when that region goes dark.
			natsHost := hostOf(t, all["ATOLL_NATS"])
			nodeCert := natsNodeCert(t, out, natsHost)
			if region, _, _ := strings.Cut(rel, string(filepath.Separator)); !strings.HasPrefix(nodeCert, filepath.Join(out, region)+string(filepath.Separator)) {
				t.Errorf("ATOLL_NATS %s is another region's NATS node (%s)", all["ATOLL_NATS"], nodeCert)
			}
			checkCert(t, nodeCert, ca, natsHost)
		})
	}
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		t.Fatalf("%q: no host", rawURL)
	}
	return u.Hostname()
}

// natsNodeCert is the certificate enrolled for the NATS node at ip.
func natsNodeCert(t *testing.T, out, ip string) string {
	t.Helper()
	certs, _ := filepath.Glob(filepath.Join(out, "*", "nats-node", "node.pem"))
	for _, c := range certs {
		if parseCert(t, c).VerifyHostname(ip) == nil {
			return c
		}
	}
	t.Fatalf("no NATS node's certificate is valid for %s", ip)
	return ""
}

func parseCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// checkCert wants the certificate at path signed by the CA at caPath and,
// with host set, valid for it.
func checkCert(t *testing.T, path, caPath, host string) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(parseCert(t, caPath))
	opts := x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := parseCert(t, path).Verify(opts); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

// TestUnitsVerify runs systemd-analyze verify on the units (specifiers
// such as %d included), when the machine has it.
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze on this machine")
	}
	dir := t.TempDir()
	units, _ := filepath.Glob("systemd/*.service")
	if len(units) != 4 {
		t.Fatalf("%d units, want 4", len(units))
	}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		// verify wants the binary to exist.
		b = []byte(strings.ReplaceAll(string(b), "/usr/local/bin/atoll", atollBin))
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
