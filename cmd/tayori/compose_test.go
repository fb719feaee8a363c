package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	julySample = "../../testdata/aisi-monthly-2025-07.txt"
	novSample  = "../../testdata/aisi-monthly-2025-11.txt"
)

// TestComposeImportCheckShow runs the three commands end to end on the
// November sample: import to a file, check the Markdown (the two ®= URLs
// are errors, with their Markdown line numbers), and show it as JSON.
func TestComposeImportCheckShow(t *testing.T) {
	env := testEnv(t)
	dir := t.TempDir()
	md := filepath.Join(dir, "2025-11.md")

	stdout, stderr, err := runCLI(t, env, "compose", "import", novSample, "-o", md)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if stdout != "" {
		t.Errorf("import -o wrote to stdout: %q", stdout)
	}
	if !strings.Contains(stderr, "7 sections, 17 items, 19 links; check finds 2 errors, 0 warnings") {
		t.Errorf("import summary: %q", stderr)
	}
	data, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("../../compose/testdata/aisi-monthly-2025-11.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, golden) {
		t.Error("import -o differs from compose/testdata/aisi-monthly-2025-11.md")
	}

	// Without -o the Markdown goes to stdout.
	stdout, _, err = runCLI(t, env, "compose", "import", novSample)
	if err != nil || stdout != string(golden) {
		t.Errorf("import to stdout: err %v, %d bytes", err, len(stdout))
	}

	stdout, _, err = runCLI(t, env, "compose", "check", md)
	if !errors.Is(err, errSilent) {
		t.Fatalf("check: error %v, want errSilent", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("check printed %d lines:\n%s", len(lines), stdout)
	}
	mdLines := strings.Split(string(data), "\n")
	for i, l := range lines {
		var file string
		parts := strings.SplitN(l, ":", 4)
		file = parts[0]
		n, err := strconv.Atoi(parts[1])
		if err != nil || file != md || !strings.HasPrefix(parts[2], " error") {
			t.Errorf("line %d: %q", i, l)
			continue
		}
		if !strings.Contains(mdLines[n-1], "®=3") || !strings.Contains(l, "&reg=3") {
			t.Errorf("check line %q points at %q", l, mdLines[n-1])
		}
	}

	// The plain text checks the same, with its own line numbers.
	stdout, _, err = runCLI(t, env, "compose", "check", novSample)
	if !errors.Is(err, errSilent) || !strings.Contains(stdout, novSample+":70: error: ") || !strings.Contains(stdout, novSample+":74: error: ") {
		t.Errorf("check plain text: %v\n%s", err, stdout)
	}

	// Several files: all are checked, the status says whether any failed.
	stdout, stderr, err = runCLI(t, env, "compose", "check", novSample, julySample)
	if !errors.Is(err, errSilent) || strings.Count(stdout, "\n") != 2 || !strings.Contains(stderr, julySample+": 0 errors, 0 warnings") {
		t.Errorf("check two files: %v\n%s%s", err, stdout, stderr)
	}

	// July has no problems: exit 0.
	stdout, stderr, err = runCLI(t, env, "compose", "check", julySample)
	if err != nil || stdout != "" || !strings.Contains(stderr, "0 errors, 0 warnings") {
		t.Errorf("check July: %v %q %q", err, stdout, stderr)
	}

	stdout, _, err = runCLI(t, env, "compose", "show", md, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Slug     string `json:"slug"`
		Sections []struct {
			Heading string `json:"heading"`
			Region  string `json:"region"`
			Kind    string `json:"kind"`
			Items   []struct {
				Dates    struct{ Text string } `json:"dates"`
				Headline string                `json:"headline"`
				Body     []string              `json:"body"`
				Links    []string              `json:"links"`
				Region   string                `json:"region"`
				Topics   []string              `json:"topics"`
			} `json:"items"`
		} `json:"sections"`
	}
	if err := json.Unmarshal([]byte(stdout), &shown); err != nil {
		t.Fatal(err)
	}
	items, links := 0, 0
	for _, s := range shown.Sections {
		for _, it := range s.Items {
			items++
			links += len(it.Links)
			if it.Region == "" || len(it.Topics) == 0 || it.Topics[0] != s.Kind || it.Dates.Text == "" {
				t.Errorf("item %+v", it)
			}
		}
	}
	if shown.Slug != "2025-11" || len(shown.Sections) != 7 || items != 17 || links != 19 {
		t.Errorf("show --json: slug %q, %d sections, %d items, %d links", shown.Slug, len(shown.Sections), items, links)
	}
	if s := shown.Sections[6]; s.Region != "intl" || s.Kind != "reports" || s.Items[0].Region != "eu" {
		t.Errorf("intl section %+v", s)
	}
	if !strings.Contains(stdout, "&reg=") && !strings.Contains(stdout, "PRID=2186639®=3") {
		t.Error("JSON escapes or loses the URL")
	}

	stdout, _, err = runCLI(t, env, "compose", "show", julySample)
	if err != nil || !strings.Contains(stdout, "【米国】(7月1日~7月31日)  [us/policy]") {
		t.Errorf("show outline: %v\n%s", err, stdout)
	}
}

func TestComposeImportStdinAndFlags(t *testing.T) {
	src, err := os.ReadFile(julySample)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err = run(context.Background(), []string{"compose", "import", "-", "--slug", "2025-07b", "--title", "七月号", "--preheader", "今月"},
		testEnv(t), bytes.NewReader(src), &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, want := range []string{"slug: 2025-07b\n", "title: 七月号\n", "preheader: 今月\n", "\n## 【欧州】(7月1日~7月31日) {region=eu kind=policy group=\"海外主要国のAI政策動向 ※日時は現地時間\"}\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestComposeErrors(t *testing.T) {
	env := testEnv(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("日本AISIの活動\n(2025/11/31)日付が変\n謎の見出し\n\xff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"import", "check", "show"} {
		t.Run(cmd, func(t *testing.T) {
			stdout, stderr, err := runCLI(t, env, "compose", cmd, bad)
			if !errors.Is(err, errSilent) {
				t.Fatalf("error %v", err)
			}
			if !strings.Contains(stdout+stderr, bad+":4: error: invalid UTF-8") {
				t.Errorf("stdout %q stderr %q", stdout, stderr)
			}
		})
	}
	// Fix the encoding: now both other problems show, at once.
	if err := os.WriteFile(bad, []byte("日本AISIの活動\n(2025/11/31)日付が変\n謎の見出し\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runCLI(t, env, "compose", "check", bad)
	if !errors.Is(err, errSilent) || !strings.Contains(stdout, bad+":2: error: item: bad dates") || !strings.Contains(stdout, bad+":3: error: unknown section heading") {
		t.Errorf("check: %v\n%s", err, stdout)
	}
	if _, _, err := runCLI(t, env, "compose", "check", filepath.Join(dir, "missing.md")); err == nil || errors.Is(err, errSilent) {
		t.Errorf("missing file: %v", err)
	}
}

// TestComposeImportMakesTheOutputDirectory: `-o issues/2025-11.md` in a
// fresh clone (no issues/ yet) makes the directory, as the README's
// example expects; when it cannot, the error names the file the user gave,
// never the hidden temporary file written beside it.
func TestComposeImportMakesTheOutputDirectory(t *testing.T) {
	env := testEnv(t)
	src, err := filepath.Abs(novSample)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if _, stderr, err := runCLI(t, env, "compose", "import", src, "-o", "issues/2025-11.md"); err != nil {
		t.Fatalf("import into a directory not made yet: %v\n%s", err, stderr)
	}
	if data, err := os.ReadFile("issues/2025-11.md"); err != nil || !bytes.HasPrefix(data, []byte("---\n")) {
		t.Fatalf("issues/2025-11.md: %v", err)
	}
	if err := os.WriteFile("plain-file", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, env, "compose", "import", src, "-o", "plain-file/2025-11.md")
	if err == nil {
		t.Fatal("import into a directory that is a file succeeded")
	}
	if !strings.Contains(err.Error(), "plain-file/2025-11.md") || strings.Contains(err.Error(), ".2025-11.md.") {
		t.Errorf("the error should name plain-file/2025-11.md and no temporary file: %v", err)
	}
	entries, _ := os.ReadDir("issues")
	if len(entries) != 1 {
		t.Errorf("issues/ holds %d files, want only 2025-11.md (no temporary file left)", len(entries))
	}
}
