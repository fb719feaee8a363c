package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/config"
	"github.com/tayori-news/tayori/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table from internal/config.Vars")

const (
	readmePath       = "../../README.md"
	configTableBegin = "<!-- config table: generated from internal/config.Vars -->\n"
	configTableEnd   = "<!-- end of config table -->\n"
)

// configTable renders config.Vars as the README's configuration table.
func configTable() string {
	cell := func(s string) string {
		if s == "" {
			return "—"
		}
		return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
	}
	var b strings.Builder
	b.WriteString("| Variable | YAML key | Default | Meaning |\n|---|---|---|---|\n")
	for _, v := range config.Vars {
		doc := strings.ReplaceAll(v.Doc, "|", `\|`)
		if v.Secret {
			doc += " (redacted by `tayori config`)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Env, cell(v.Key), cell(v.DefaultText()), doc)
	}
	return b.String()
}

// TestREADMEConfigTable: the README's configuration table is config.Vars,
// every variable in order with its key, default and meaning; -update
// rewrites it.
func TestREADMEConfigTable(t *testing.T) {
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i, j := strings.Index(s, configTableBegin), strings.Index(s, configTableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q and %q around the configuration table", configTableBegin, configTableEnd)
	}
	got, want := s[i+len(configTableBegin):j], configTable()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(s[:i+len(configTableBegin)]+want+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's configuration table differs from internal/config.Vars; run\n"+
		"  go test ./cmd/tayori -run TestREADMEConfigTable -update\nREADME:\n%s\nVars:\n%s", got, want)
}

// readmeLine is one command of a shell block of the README.
type readmeLine struct {
	n      int      // line number in README.md
	text   string   // as written, without its comment
	args   []string // split as the shell would (quotes, backslashes)
	status int      // exit status its comment states ("# exits 1: …"), else 0
}

// readmeCommands returns the commands of the README's ```sh blocks, in
// order, and the first block's.
func readmeCommands(t *testing.T) (all, first []readmeLine) {
	t.Helper()
	f, err := os.Open(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in, blocks := false, 0
	exits := regexp.MustCompile(`^#\s*exits (\d+)\b`)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
			blocks++
			continue
		case in && strings.HasPrefix(line, "```"):
			in = false
			continue
		case !in || strings.TrimSpace(line) == "":
			continue
		}
		args, comment, err := shellSplit(line)
		if err != nil {
			t.Errorf("README.md:%d: %v", n, err)
			continue
		}
		if len(args) == 0 {
			continue
		}
		l := readmeLine{n: n, text: strings.TrimSpace(strings.TrimSuffix(line, comment)), args: args}
		if m := exits.FindStringSubmatch(comment); m != nil {
			l.status, _ = strconv.Atoi(m[1])
		}
		all = append(all, l)
		if blocks == 1 {
			first = append(first, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return all, first
}

// shellSplit splits a command line into words as sh would for the simple
// lines the README holds (quotes and backslashes; no expansion), and
// returns its trailing comment.
func shellSplit(line string) (words []string, comment string, err error) {
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '#' && !inWord:
			return words, line[i:], nil
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, "", fmt.Errorf("unclosed ' in %q", line)
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte(`"\$`+"`", line[i+1]) >= 0 {
					i++
				}
				w.WriteByte(line[i])
			}
			if i == len(line) {
				return nil, "", fmt.Errorf("unclosed \" in %q", line)
			}
			inWord = true
		case c == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, "", nil
}

// notRun are the commands the README test checks but does not run: they
// serve until stopped, or ask the real DNS.
var notRun = map[string]bool{"tayori run": true, "tayori serve": true, "tayori worker": true, "tayori preflight": true}

// TestREADMECommandsWork takes the README at its word: its first screen
// shows exactly `make demo` and `make test`; every `make` target it names
// exists; every `tayori` command names real subcommands and flags with
// valid arguments; and, in a directory laid out like a clone in which the
// demo has run (its data, an issue sent, Redis and SMTP of the test's
// own), every command that neither serves nor needs the network runs, in
// the README's order, with the exit status the README states.
func TestREADMECommandsWork(t *testing.T) {
	lines, first := readmeCommands(t)
	var firstScreen []string
	for _, l := range first {
		firstScreen = append(firstScreen, strings.Join(l.args, " "))
	}
	if strings.Join(firstScreen, "; ") != "make demo; make test" {
		t.Errorf("the README's first commands are %q, want exactly make demo and make test", firstScreen)
	}

	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(repo, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	demoScript, err := os.ReadFile(filepath.Join(repo, "scripts", "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}

	// The clone: the repository's files the README names, and the state
	// `make demo` leaves (scripts/demo.sh does the same steps).
	clone := t.TempDir()
	for _, name := range []string{"testdata", "scripts", "feedback"} {
		if err := os.Symlink(filepath.Join(repo, name), filepath.Join(clone, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(clone)
	smtp := testutil.StartSMTP(t)
	_, db := testutil.RedisDBNumber(t)
	env := map[string]string{
		"TAYORI_DATA_DIR":  ".tayori-run/demo",
		"TAYORI_REDIS_URL": testutil.RedisDBURL(t, db),
		"TAYORI_SMTP_URL":  smtp.URL(),
		"TAYORI_BASE_URL":  "http://127.0.0.1:8080",
		"TAYORI_LOG_LEVEL": "warn",
	}
	getenv := func(k string) string { return env[k] }
	tayori := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &out)
		return out.String(), err
	}
	const password = "correct horse battery staple\n"
	if out, err := tayori("", "init"); err != nil { // as scripts/demo.sh does first
		t.Fatalf("the demo's step tayori init: %v\n%s", err, out)
	}
	startWorker(t, getenv)
	for _, step := range [][]string{
		{"compose", "import", "testdata/aisi-monthly-2025-11.txt", "-o", ".tayori-run/demo/2025-11.md"},
		{"subscribers", "import", "scripts/demo-subscribers.csv", "--list", "monthly"},
		{"editors", "add", "demo"},
		{"send", ".tayori-run/demo/2025-11.md", "--list", "monthly", "--wait", "--force"},
	} {
		if out, err := tayori(password, step...); err != nil {
			t.Fatalf("the demo's step tayori %s: %v\n%s", strings.Join(step, " "), err, out)
		}
	}

	for _, l := range lines {
		where := fmt.Sprintf("README.md:%d: %s", l.n, l.text)
		switch l.args[0] {
		case "make":
			for _, target := range l.args[1:] {
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).Match(makefile) {
					t.Errorf("%s: the Makefile has no target %q", where, target)
				}
			}
		case "export":
			// PATH set-up for `make install`; nothing to check here.
		case ".", "source":
			if len(l.args) != 2 || l.args[1] != ".tayori-run/demo/env" || !bytes.Contains(demoScript, []byte(`> "$demo/env"`)) {
				t.Errorf("%s: scripts/demo.sh does not write that file", where)
			}
		case "sed":
			cmd := exec.Command("sh", "-c", l.text)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", where, err, out)
			}
		case "tayori":
			if !checkTayoriLine(t, where, l.args[1:]) {
				continue
			}
			path := "tayori " + l.args[1]
			if notRun[path] {
				continue
			}
			out, err := tayori(password, l.args[1:]...)
			status := 0
			if err != nil {
				status = exitCode(err)
			}
			if status != l.status {
				t.Errorf("%s: exit status %d, the README says %d (%v)\n%s", where, status, l.status, err, out)
			}
		default:
			t.Errorf("%s: the README test does not know how to check %q: teach it", where, l.args[0])
		}
	}
}

// checkTayoriLine reports, failing the test if not, whether args name a
// real command whose flags all exist and whose arguments it accepts.
func checkTayoriLine(t *testing.T, where string, args []string) bool {
	t.Helper()
	a := &app{getenv: func(string) string { return "" }}
	root := newRootCmd(a)
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return false
	}
	if cmd == root || (cmd.HasSubCommands() && !cmd.Runnable()) {
		t.Errorf("%s: names no command (found %q)", where, cmd.CommandPath())
		return false
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: %s: %v", where, cmd.CommandPath(), err)
		return false
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Errorf("%s: %s: %v", where, cmd.CommandPath(), err)
		return false
	}
	return true
}

// TestREADMELinksExist: every relative link and picture of the README
// points at a file of the repository.
func TestREADMELinksExist(t *testing.T) {
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#]+)(#[^)]*)?\)`).FindAllSubmatch(data, -1) {
		target := string(m[1])
		if strings.Contains(target, "://") {
			continue
		}
		if _, err := os.Stat(filepath.Join("../..", target)); err != nil {
			t.Errorf("README.md links to %s: %v", target, err)
		}
	}
}
