package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/templates"
)

// previewEnv is the environment of the preview tests: no Redis or database
// is needed.
func previewEnv(t *testing.T) func(string) string {
	t.Helper()
	env := map[string]string{
		"TAYORI_DATA_DIR":       t.TempDir(),
		"TAYORI_SECRET":         "t1:0123456789abcdef0123456789abcdef",
		"TAYORI_BASE_URL":       "https://news.example.jp",
		"TAYORI_FROM":           "AI政策動向 <newsletter@news.example.jp>",
		"TAYORI_POSTAL_ADDRESS": "〒100-0013 東京都千代田区霞が関1-1-1",
		"TAYORI_LOG_LEVEL":      "warn",
	}
	return func(k string) string { return env[k] }
}

func TestComposePreview(t *testing.T) {
	sample := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")
	tests := []struct {
		name      string
		args      []string
		want      []string // in both parts
		wantNot   []string // in neither part
		wantItems string
	}{
		{
			name:      "Full",
			want:      []string{"【米国】", "【欧州】", "日本AISIの活動", "https://www.gov.uk/government/news/launching-the-ai-model-arena", "購読者の皆様"},
			wantItems: "17 items",
		},
		{
			name:      "RegionsEU",
			args:      []string{"--regions", "eu"},
			want:      []string{"【欧州】", "https://ec.europa.eu/commission/presscorner/detail/en/ip_25_2718"},
			wantNot:   []string{"【米国】", "日本AISIの活動", "https://www.whitehouse.gov/"},
			wantItems: "3 items",
		},
		{
			name:      "TopicsPolicyWithName",
			args:      []string{"--regions", "jp,us", "--topics", "policy", "--name", "山田 太郎"},
			want:      []string{"国内AI政策動向", "【米国】", "山田 太郎 様"},
			wantNot:   []string{"日本AISIの活動", "【欧州】", "国内の主要なAI関連レポート等"},
			wantItems: "5 items",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			var stdout, stderr bytes.Buffer
			args := append([]string{"compose", "preview", sample, "--out", dir}, tt.args...)
			if err := run(context.Background(), args, previewEnv(t), strings.NewReader(""), &stdout, &stderr); err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantItems) {
				t.Errorf("stdout %q does not report %q", stdout.String(), tt.wantItems)
			}
			for _, f := range []string{"preview.html", "preview.txt"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				s := string(b)
				for _, w := range append(tt.want, "https://news.example.jp/unsubscribe?token=preview", "AI政策動向", "〒100-0013") {
					if f == "preview.html" {
						w = strings.ReplaceAll(w, "&", "&amp;")
					}
					if !strings.Contains(s, w) {
						t.Errorf("%s lacks %q", f, w)
					}
				}
				for _, w := range tt.wantNot {
					if strings.Contains(s, w) {
						t.Errorf("%s has %q", f, w)
					}
				}
			}
		})
	}
}

func TestComposePreviewErrors(t *testing.T) {
	sample := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")
	run1 := func(args ...string) error {
		var out, errb bytes.Buffer
		return run(context.Background(), append([]string{"compose", "preview"}, args...), previewEnv(t), strings.NewReader(""), &out, &errb)
	}
	dir := t.TempDir()
	if err := run1(sample, "--out", dir, "--regions", "asia", "--topics", "activities"); !errors.Is(err, templates.ErrNothingToSend) {
		t.Errorf("nothing matching: got %v, want ErrNothingToSend", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "preview.html")); err == nil {
		t.Error("preview.html written for a reader who receives nothing")
	}
	if err := run1(sample, "--out", dir, "--regions", "mars"); err == nil || !strings.Contains(err.Error(), "mars") {
		t.Errorf("unknown region: got %v", err)
	}
	if err := run1(sample); err == nil || !strings.Contains(err.Error(), "out") {
		t.Errorf("missing --out: got %v", err)
	}
	if err := run1(filepath.Join(dir, "missing.md"), "--out", dir); err == nil {
		t.Error("missing file: no error")
	}
}
