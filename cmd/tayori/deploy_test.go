package main

import (
	"bufio"
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tayori-news/tayori/internal/config"
	"github.com/tayori-news/tayori/internal/redisurl"
	"github.com/tayori-news/tayori/internal/store"
)

// The deployment files cannot be run where the tests run (no Docker, no
// systemd as init): these tests check what can be checked without running
// them. Every environment variable they set must be one Tayori reads
// (internal/config's Vars), every command they start must be a tayori
// command, and the image must build the binary as `make build` does.

const deployDir = "../../deploy"

// tayoriVars is the set of variables internal/config reads.
func tayoriVars() map[string]bool {
	m := map[string]bool{}
	for _, v := range config.Vars {
		m[v.Env] = true
	}
	return m
}

// checkCommand checks that args (after the binary) name a tayori command
// that takes them.
func checkCommand(t *testing.T, where string, args []string) {
	t.Helper()
	a := &app{getenv: func(string) string { return "" }}
	root := newRootCmd(a)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Errorf("%s: %q is not a tayori command (%v)", where, strings.Join(args, " "), err)
		return
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: %q: %v", where, strings.Join(args, " "), err)
		return
	}
	if cmd.Args != nil {
		if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
			t.Errorf("%s: %q: %v", where, strings.Join(args, " "), err)
		}
	}
}

func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image   string `yaml:"image"`
			Build   *struct{ Context, Dockerfile string }
			Command []string          `yaml:"command"`
			EnvFile string            `yaml:"env_file"`
			Env     map[string]string `yaml:"environment"`
			Ports   []string          `yaml:"ports"`
			Deploy  struct{ Replicas int }
		}
		Volumes map[string]any
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	vars := tayoriVars()
	var webs, workers int
	for name, s := range doc.Services {
		if s.Build == nil {
			continue // postgres, redis: their images' own variables
		}
		where := "compose.yaml service " + name
		df := filepath.Join(deployDir, s.Build.Context, s.Build.Dockerfile)
		if filepath.Clean(df) != filepath.Clean(filepath.Join(deployDir, "Dockerfile")) {
			t.Errorf("%s builds %s, want deploy/Dockerfile", where, df)
		}
		if _, err := os.Stat(filepath.Join(deployDir, s.EnvFile+".example")); s.EnvFile == "" || err != nil {
			t.Errorf("%s: env_file %q has no .example beside it", where, s.EnvFile)
		}
		for k := range s.Env {
			if !vars[k] {
				t.Errorf("%s sets %s, which Tayori does not read", where, k)
			}
		}
		checkCommand(t, where, s.Command)
		replicas := max(s.Deploy.Replicas, 1)
		switch s.Command[0] {
		case "serve":
			webs += replicas
			addr := s.Env["TAYORI_HTTP_ADDR"]
			_, port, _ := strings.Cut(addr, ":")
			if !strings.HasPrefix(addr, "0.0.0.0:") || len(s.Ports) != 1 || !strings.HasSuffix(s.Ports[0], ":"+port) {
				t.Errorf("%s listens on %q inside the container and publishes %v", where, addr, s.Ports)
			}
		case "worker":
			workers += replicas
		}
		// The stores are the compose file's own services.
		db, err := url.Parse(s.Env["TAYORI_DB"])
		if engine, _, perr := store.Parse(s.Env["TAYORI_DB"]); err != nil || perr != nil || engine != store.Postgres {
			t.Errorf("%s: TAYORI_DB %q, want postgres://…", where, s.Env["TAYORI_DB"])
			continue
		}
		pg := doc.Services[db.Hostname()]
		pass, _ := db.User.Password()
		if pg.Image == "" || pg.Env["POSTGRES_USER"] != db.User.Username() || pg.Env["POSTGRES_PASSWORD"] != pass ||
			"/"+pg.Env["POSTGRES_DB"] != db.Path {
			t.Errorf("%s: TAYORI_DB %q does not match the service %q (%v)", where, s.Env["TAYORI_DB"], db.Hostname(), pg.Env)
		}
		ro, err := redisurl.Parse(s.Env["TAYORI_REDIS_URL"])
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		host, _, _ := strings.Cut(ro.Addrs()[0], ":")
		if r, ok := doc.Services[host]; !ok || !slices.Contains(r.Command, "noeviction") {
			t.Errorf("%s: TAYORI_REDIS_URL names %q, not a Redis service with maxmemory-policy noeviction", where, host)
		}
	}
	if webs != 1 || workers != 2 {
		t.Errorf("compose.yaml starts %d web servers and %d workers, want 1 and 2", webs, workers)
	}
}

// envFile reads KEY=VALUE lines, and with commented also "#KEY=VALUE"
// lines (settings shown but left off).
func envFile(t *testing.T, path string, commented bool) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	re := regexp.MustCompile(`^(#?)([A-Z][A-Z0-9_]*)=(.*)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := re.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil || (m[1] == "#" && !commented) {
			continue
		}
		if _, dup := out[m[2]]; dup && m[1] == "" {
			t.Errorf("%s sets %s twice", path, m[2])
		}
		v := m[3]
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1] // as systemd's EnvironmentFile and compose's env_file do
		}
		if m[1] == "" || out[m[2]] == "" {
			out[m[2]] = v
		}
	}
	return out
}

func TestEnvFileExample(t *testing.T) {
	path := filepath.Join(deployDir, "tayori.env.example")
	vars := tayoriVars()
	for k := range envFile(t, path, true) {
		if !vars[k] {
			t.Errorf("%s sets %s, which Tayori does not read", path, k)
		}
	}
	env := envFile(t, path, false)
	if env["TAYORI_SECRET"] == "" {
		t.Errorf("%s leaves TAYORI_SECRET out: several processes need one key", path)
	}
	if !strings.HasPrefix(env["TAYORI_DB"], "postgres://") {
		t.Errorf("%s: TAYORI_DB %q, want the several-machines postgres://…", path, env["TAYORI_DB"])
	}
	// The example's values load, TAYORI_DB's PostgreSQL URL included.
	env["TAYORI_DATA_DIR"] = t.TempDir()
	c, err := config.Load(func(k string) string { return env[k] }, "")
	if err != nil {
		t.Errorf("%s does not load: %v", path, err)
	}
	if engine, _, err := store.Parse(c.DB); err != nil || engine != store.Postgres {
		t.Errorf("%s: TAYORI_DB %q is %q, %v; want PostgreSQL", path, env["TAYORI_DB"], engine, err)
	}
	// The Sentinel form shown commented out parses too.
	data, _ := os.ReadFile(path)
	m := regexp.MustCompile(`(?m)^# ?TAYORI_REDIS_URL=(redis\+sentinel://\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s does not show the Sentinel form of TAYORI_REDIS_URL", path)
	}
	if _, err := redisurl.Parse(string(m[1])); err != nil {
		t.Errorf("%s: the Sentinel example: %v", path, err)
	}
}

// unit is a systemd unit file: section → key → values in order.
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		case section == "":
			t.Errorf("%s:%d: %q outside a section", path, i+1, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s:%d: %q is not Key=Value", path, i+1, line)
				continue
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

func TestSystemdUnits(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(deployDir, "systemd", "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no unit files: %v", err)
	}
	vars := tayoriVars()
	seen := map[string]bool{}
	for _, path := range paths {
		name := filepath.Base(path)
		seen[name] = true
		u := readUnit(t, path)
		if _, ok := u["Unit"]; !ok {
			t.Errorf("%s has no [Unit]", name)
		}
		if strings.HasSuffix(name, ".timer") {
			svc := strings.TrimSuffix(name, ".timer") + ".service"
			if _, err := os.Stat(filepath.Join(deployDir, "systemd", svc)); err != nil {
				t.Errorf("%s starts %s, which is not there", name, svc)
			}
			continue
		}
		s := u["Service"]
		if s == nil {
			t.Errorf("%s has no [Service]", name)
			continue
		}
		if !slices.Equal(s["EnvironmentFile"], []string{"/etc/tayori/tayori.env"}) {
			t.Errorf("%s: EnvironmentFile %v, want /etc/tayori/tayori.env", name, s["EnvironmentFile"])
		}
		env := map[string]string{}
		for _, line := range s["Environment"] {
			for _, a := range strings.Fields(line) {
				k, v, _ := strings.Cut(strings.Trim(a, `"`), "=")
				env[k] = v
				if !vars[k] {
					t.Errorf("%s sets %s, which Tayori does not read", name, k)
				}
			}
		}
		// The data directory is the unit's own state directory.
		if dirs := s["StateDirectory"]; len(dirs) != 1 || env["TAYORI_DATA_DIR"] != "/var/lib/"+dirs[0] {
			t.Errorf("%s: TAYORI_DATA_DIR %q is not its StateDirectory %v", name, env["TAYORI_DATA_DIR"], dirs)
		}
		exec := s["ExecStart"]
		if len(exec) != 1 {
			t.Errorf("%s: ExecStart %v", name, exec)
			continue
		}
		args := strings.Fields(exec[0])
		if args[0] != "/usr/local/bin/tayori" {
			t.Errorf("%s runs %s, want /usr/local/bin/tayori", name, args[0])
		}
		checkCommand(t, name, args[1:])
		if args[1] != "subscribers" && !slices.Equal(s["TimeoutStopSec"], []string{"45s"}) {
			t.Errorf("%s: TimeoutStopSec %v: keep it above TAYORI_SHUTDOWN_TIMEOUT (%v)", name, s["TimeoutStopSec"], config.Defaults().ShutdownTimeout)
		}
	}
	for _, want := range []string{"tayori.service", "tayori-web.service", "tayori-worker@.service", "tayori-purge.timer"} {
		if !seen[want] {
			t.Errorf("deploy/systemd has no %s", want)
		}
	}
}

func TestDockerfileBuildsAsTheMakefile(t *testing.T) {
	df, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	// The image builds with the Makefile's own target, handing it the
	// Makefile's variables.
	run := regexp.MustCompile(`(?m)^RUN make build (.*)$`).FindSubmatch(df)
	if run == nil {
		t.Fatal("deploy/Dockerfile does not build with `make build`")
	}
	for _, kv := range strings.Fields(string(run[1])) {
		k, _, _ := strings.Cut(kv, "=")
		if !regexp.MustCompile(`(?m)^` + k + ` [:?]?=`).Match(mk) {
			t.Errorf("deploy/Dockerfile sets %s, which the Makefile does not define", k)
		}
	}
	// Where `make build` writes the binary is where the image takes it.
	out := regexp.MustCompile(`(?m)^build:.*\n\t.* -o (\S+) \./cmd/tayori$`).FindSubmatch(mk)
	if out == nil {
		t.Fatal("the Makefile's build target does not write -o FILE ./cmd/tayori")
	}
	if !bytes.Contains(df, []byte("COPY --from=build /src/"+string(out[1])+" /usr/local/bin/tayori")) {
		t.Errorf("deploy/Dockerfile does not copy /src/%s, where `make build` writes the binary", out[1])
	}
	// The Go image is the go.mod's Go version.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gov := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if gov == nil || !bytes.Contains(df, []byte("GO_IMAGE=golang:"+string(gov[1])+"-")) {
		t.Errorf("deploy/Dockerfile's GO_IMAGE is not golang:%s-…", gov[1])
	}
	vars := tayoriVars()
	for _, m := range regexp.MustCompile(`(?m)^ENV (\w+)=`).FindAllSubmatch(df, -1) {
		if !vars[string(m[1])] {
			t.Errorf("deploy/Dockerfile sets %s, which Tayori does not read", m[1])
		}
	}
	ignore, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile.dockerignore"))
	if err != nil || !regexp.MustCompile(`(?m)^\.git$`).Match(ignore) {
		t.Errorf("deploy/Dockerfile.dockerignore must keep .git out of the context: %v", err)
	}
	if _, err := os.Stat("../../compose.yaml"); err == nil {
		t.Error("compose.yaml at the repository root would be confused with the compose package: keep it in deploy/")
	}
}
