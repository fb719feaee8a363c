package templates_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/templates"
)

// nothingIssue is the November sample with the US and EU sections marked
// "該当なし" by the editor.
func nothingIssue(tb testing.TB) *compose.Issue {
	tb.Helper()
	is, err := compose.Load(filepath.Join("..", "testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	for i := range is.Sections {
		if r := is.Sections[i].Region; (r == audience.US || r == audience.EU) && is.Sections[i].Kind == audience.Policy {
			is.Sections[i].Items = []compose.Item{}
			is.Sections[i].Nothing = "該当なし"
		}
	}
	return is
}

// Issue 22: a region marked "該当なし" keeps its heading with the note in
// the copies of readers who chose it (and in the full copy of the
// archive); a reader whose chosen sections all have nothing gets a short
// copy that says so, with the issue's link. Golden files:
// testdata/2025-11-nothing.*.
func TestNothingThisMonth(t *testing.T) {
	r := newRenderer(t)
	is := nothingIssue(t)
	cases := []struct {
		name  string
		prefs audience.Prefs
		only  bool
		has   []string
		lacks []string
	}{
		{"full", audience.All(), false, []string{"■ 【米国】", "■ 【欧州】", "該当なし", "国内AI政策動向"}, []string{"該当する項目はありませんでした"}},
		{"jp-us-policy", audience.Prefs{Regions: []audience.Region{audience.JP, audience.US}, Topics: []audience.Topic{audience.Policy}},
			false, []string{"■ 【米国】", "該当なし", "国内AI政策動向"}, []string{"【欧州】", "該当する項目はありませんでした"}},
		{"us-eu-policy", audience.Prefs{Regions: []audience.Region{audience.US, audience.EU}, Topics: []audience.Topic{audience.Policy}},
			true, []string{"■ 【米国】", "■ 【欧州】", "該当なし", "今月は、お選びいただいた地域・分野に該当する項目はありませんでした。",
				"https://news.example.go.jp/issues/2025-11", "【配信停止】"}, []string{"国内AI政策動向", "● "}},
	}
	keys := map[string]string{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sel, err := templates.Select(is, c.prefs)
			if err != nil {
				t.Fatalf("select: %v", err)
			}
			if sel.OnlyNothing() != c.only || strings.HasPrefix(sel.Key(), templates.NothingKeyPrefix) != c.only {
				t.Errorf("OnlyNothing %v, key %q", sel.OnlyNothing(), sel.Key())
			}
			keys[c.name] = sel.Key()
			got := render(t, r, is, c.prefs)
			text := string(got.text)
			for _, s := range c.has {
				if !strings.Contains(text, s) {
					t.Errorf("text lacks %q", s)
				}
			}
			for _, s := range c.lacks {
				if strings.Contains(text, s) {
					t.Errorf("text has %q", s)
				}
			}
			if !strings.Contains(string(got.html), "該当なし") {
				t.Error("HTML lacks the note")
			}
			if c.only && !strings.Contains(string(got.html), `href="https://news.example.go.jp/issues/2025-11"`) {
				t.Error("short copy's HTML lacks the issue's link")
			}
			base := filepath.Join("testdata", "2025-11-nothing."+c.name)
			golden(t, base+".html", got.html)
			golden(t, base+".txt", got.text)
		})
	}
	// Readers with the same items but different marked sections get
	// different variants; the full copy is "all".
	if keys["full"] != "all" || keys["jp-us-policy"] == keys["full"] {
		t.Errorf("keys %v", keys)
	}
	jpOnly, err := templates.Select(is, audience.Prefs{Regions: []audience.Region{audience.JP}, Topics: []audience.Topic{audience.Policy}})
	if err != nil {
		t.Fatal(err)
	}
	if jpOnly.Key() == keys["jp-us-policy"] {
		t.Errorf("a reader of jp alone shares the key %q of jp+us", jpOnly.Key())
	}
	// A reader of a region the issue does not mention still gets nothing.
	noIntl := nothingIssue(t)
	var kept []compose.Section
	for _, s := range noIntl.Sections {
		if s.Region != audience.Intl {
			kept = append(kept, s)
		}
	}
	noIntl.Sections = kept
	if _, err := templates.Select(noIntl, audience.Prefs{Regions: []audience.Region{audience.Intl}, Topics: audience.StandardTopics}); !errors.Is(err, templates.ErrNothingToSend) {
		t.Errorf("reader of a region not in the issue: %v, want ErrNothingToSend", err)
	}
}
