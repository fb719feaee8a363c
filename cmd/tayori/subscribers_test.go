package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSubscribersCommands drives the subscriber commands end to end through
// run(), on a real SQLite file in a temporary data directory.
func TestSubscribersCommands(t *testing.T) {
	env := initEnv(t)
	dir := t.TempDir()
	must := func(args ...string) string {
		t.Helper()
		out, errOut, err := runCLI(t, env, args...)
		if err != nil {
			t.Fatalf("tayori %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}

	// add: pending without consent, active with it.
	if out := must("subscribers", "add", "Pending@Example.JP", "--name", "保留"); !strings.Contains(out, "pending") {
		t.Errorf("add without consent: %q", out)
	}
	out := must("subscribers", "add", "taro@example.jp", "--name", "山田太郎", "--regions", "jp,us", "--topics", "policy",
		"--consent-at", "2026-01-15", "--consent-version", "paper-2026", "--consent-text", "同意します")
	if !strings.Contains(out, "active") {
		t.Errorf("add with consent: %q", out)
	}
	if _, _, err := runCLI(t, env, "subscribers", "add", "taro@example.jp\r\nBcc: x@evil.example"); err == nil || !strings.Contains(err.Error(), "email") {
		t.Errorf("add with CR/LF: %v", err)
	}
	if _, _, err := runCLI(t, env, "subscribers", "add", "x@example.jp", "--regions", "mars"); err == nil || !strings.Contains(err.Error(), "mars") {
		t.Errorf("add with a bad region: %v", err)
	}

	// import: good and bad rows, an unknown column, a BOM.
	file := filepath.Join(dir, "subs.csv")
	content := "\uFEFFemail,name,regions,consent_at,shoe_size\n" +
		"hanako@example.jp,花子,eu,2026-01-10,23\n" +
		"broken-address,x,,,\n" +
		"jiro@example.jp,次郎,asia,2026-01-11,27\n" +
		"taro@example.jp,山田太郎,\"jp,us\",,\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, env, "subscribers", "import", file, "--dry-run")
	if !errors.Is(err, errSilent) || !strings.Contains(out, "dry run, nothing changed: 4 rows: 2 added, 0 updated, 1 unchanged, 0 skipped, 1 errors") {
		t.Errorf("dry run: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = runCLI(t, env, "subscribers", "import", file)
	if !errors.Is(err, errSilent) {
		t.Errorf("import with a bad row: err = %v, want errSilent (exit status 1)", err)
	}
	if !strings.Contains(out, "4 rows: 2 added, 0 updated, 1 unchanged, 0 skipped, 1 errors") {
		t.Errorf("import summary: %q", out)
	}
	if !strings.Contains(errOut, "error: row 3: email: missing @") || strings.Count(errOut, `unknown column "shoe_size"`) != 1 {
		t.Errorf("import diagnostics: %q", errOut)
	}
	out, _, _ = runCLI(t, env, "subscribers", "import", file)
	if !strings.Contains(out, "4 rows: 0 added, 0 updated, 3 unchanged") {
		t.Errorf("re-import: %q", out)
	}

	// list and search.
	out = must("subscribers", "list")
	for _, want := range []string{"Pending@example.jp", "taro@example.jp", "hanako@example.jp", "jiro@example.jp", "jp,us|policy"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	out = must("subscribers", "list", "--search", "花子", "--json")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 || listed[0]["email"] != "hanako@example.jp" {
		t.Errorf("list --search --json: %v %s", err, out)
	}
	out = must("subscribers", "list", "--status", "pending")
	if !strings.Contains(out, "Pending@example.jp") || strings.Contains(out, "taro@") {
		t.Errorf("list --status pending:\n%s", out)
	}

	// show: the GDPR export.
	out = must("subscribers", "show", "taro@example.jp")
	var shown struct {
		Subscriber struct {
			Email  string `json:"email"`
			Status string `json:"status"`
		} `json:"subscriber"`
		Consents []struct {
			Method      string `json:"method"`
			FormVersion string `json:"form_version"`
		} `json:"consents"`
		StatusHistory []struct{ To string } `json:"status_history"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if shown.Subscriber.Status != "active" || len(shown.Consents) != 1 || shown.Consents[0].FormVersion != "paper-2026" || len(shown.StatusHistory) != 1 {
		t.Errorf("show: %+v", shown)
	}

	// export csv (importable) and json.
	out = must("subscribers", "export")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 5 || recs[0][0] != "email" {
		t.Errorf("export csv: %v\n%s", err, out)
	}
	exported := filepath.Join(dir, "export.csv")
	must("subscribers", "export", "--output", exported)
	if out := must("subscribers", "import", exported); !strings.Contains(out, "4 rows: 0 added, 0 updated, 4 unchanged, 0 skipped, 0 errors") {
		t.Errorf("import of the export: %q", out)
	}
	out = must("subscribers", "export", "--format", "json", "--status", "active")
	var js []map[string]any
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js) != 3 {
		t.Errorf("export json: %v (%d)\n%s", err, len(js), out)
	}
	if _, _, err := runCLI(t, env, "subscribers", "export", "--format", "xml"); err == nil {
		t.Error("export --format xml accepted")
	}

	// lists.
	must("subscribers", "lists", "create", "alerts", "速報")
	out = must("subscribers", "lists")
	if !strings.Contains(out, "alerts") || !strings.Contains(out, "monthly") {
		t.Errorf("lists:\n%s", out)
	}

	// unsubscribe (idempotent) and erase.
	for range 2 {
		if out := must("subscribers", "unsubscribe", "jiro@example.jp"); !strings.Contains(out, "unsubscribed") {
			t.Errorf("unsubscribe: %q", out)
		}
	}
	if _, _, err := runCLI(t, env, "subscribers", "erase", "hanako@example.jp"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("erase without --yes: %v", err)
	}
	must("subscribers", "erase", "hanako@example.jp", "--yes")
	if _, _, err := runCLI(t, env, "subscribers", "show", "hanako@example.jp"); err == nil {
		t.Error("erased subscriber still found by address")
	}
	// An import cannot bring the erased or unsubscribed addresses back.
	back := filepath.Join(dir, "back.csv")
	os.WriteFile(back, []byte("email,status,consent_at\nhanako@example.jp,active,2026-02-01\njiro@example.jp,active,2026-02-01\n"), 0o600)
	out, errOut, _ = runCLI(t, env, "subscribers", "import", back)
	if !strings.Contains(out, "2 skipped") || !strings.Contains(errOut, "suppressed") || !strings.Contains(errOut, "never re-activates") {
		t.Errorf("import of erased/unsubscribed:\n%s%s", out, errOut)
	}
	out = must("subscribers", "list", "--status", "active")
	if strings.Contains(out, "hanako") || strings.Contains(out, "jiro") {
		t.Errorf("reactivated by import:\n%s", out)
	}

	// purge: nothing is old enough yet, then the pending signup goes.
	if out := must("subscribers", "purge"); !strings.Contains(out, "purged 0 unconfirmed signups and 0 consent records") {
		t.Errorf("purge: %q", out)
	}
	if out := must("subscribers", "purge", "--pending-after", "1ns"); !strings.Contains(out, "purged 1 unconfirmed signups") {
		t.Errorf("purge --pending-after 1ns: %q", out)
	}
	if _, _, err := runCLI(t, env, "subscribers", "show", "pending@example.jp"); err == nil {
		t.Error("purged pending signup still there")
	}

	// rekey: nothing under an older key, then after a rotation the erased
	// address's entry stays under t1 (only its hash is left) and is counted.
	if out := must("subscribers", "rekey"); !strings.Contains(out, "moved 0 suppression entries to key t1") ||
		!strings.Contains(out, "no entry is under an older key") {
		t.Errorf("rekey: %q", out)
	}
	rotated := testEnv(t, "TAYORI_DATA_DIR", env("TAYORI_DATA_DIR"),
		"TAYORI_SECRET", "t2:fedcba9876543210fedcba9876543210,t1:0123456789abcdef0123456789abcdef")
	out, errOut, err = runCLI(t, rotated, "subscribers", "rekey")
	if err != nil || !strings.Contains(out, "moved 0 suppression entries to key t2") ||
		!strings.Contains(out, "key t1 still holds 1 entry (erased or report-only addresses)") {
		t.Errorf("rekey after rotation: %v\n%s%s", err, out, errOut)
	}
}
