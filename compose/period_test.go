package compose_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/templates"
)

// Issue 22: a period written with a wave dash (〜 U+301C) or a full-width
// tilde (～ U+FF5E), in every heading or in only some of them, gives the
// same period as "~", in the plain-text importer, the editor's format and
// every reader's copy.
func TestPeriodSeparators(t *testing.T) {
	src := string(readFile(t, samples[1].path))
	const want = "11月1日~11月30日"
	renderer, err := templates.New(templates.Config{SenderName: "送り手", PostalAddress: "東京都", Contact: "https://example.jp/"})
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]string{
		"ascii":          src,
		"wave dash":      strings.ReplaceAll(src, "~", "〜"),
		"fullwidth":      strings.ReplaceAll(src, "~", "～"),
		"mixed":          strings.Replace(strings.Replace(src, "11月1日~", "11月1日〜", 2), "【欧州】(11月1日~", "【欧州】(11月1日～", 1),
		"mixed headings": strings.Replace(src, "【米国】(11月1日~11月30日)", "【米国】（11月1日〜11月30日）", 1),
	}
	for name, text := range variants {
		t.Run(name, func(t *testing.T) {
			is, err := compose.ImportText("v.txt", []byte(text), compose.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if is.Period != want {
				t.Errorf("issue period %q, want %q", is.Period, want)
			}
			for _, s := range is.Sections {
				if s.Period != "" && s.Period != want {
					t.Errorf("section %q: period %q", s.Title, s.Period)
				}
			}
			// Through the editor's format and back.
			var md bytes.Buffer
			if err := compose.WriteMarkdown(&md, is); err != nil {
				t.Fatal(err)
			}
			back, err := compose.ParseMarkdown("v.md", md.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if back.Period != want {
				t.Errorf("period after the editor's format %q", back.Period)
			}
			// Every reader's copy carries the period line.
			all, err := templates.SelectAll(back)
			if err != nil {
				t.Fatal(err)
			}
			usPolicy, err := templates.Select(back, audience.Prefs{Regions: []audience.Region{audience.US}, Topics: []audience.Topic{audience.Policy}})
			if err != nil {
				t.Fatal(err)
			}
			for _, sel := range []templates.Selection{all, usPolicy} {
				v, err := renderer.Render(back, sel)
				if err != nil {
					t.Fatal(err)
				}
				text := string(v.AppendText(nil, templates.Personal{}))
				if !strings.Contains(text, "対象期間："+want) {
					t.Errorf("copy lacks the period line:\n%s", text)
				}
			}
		})
	}
	// Front matter written with a wave dash.
	md := "---\nslug: 2025-11\ntitle: t\nperiod: 11月1日〜11月30日\n---\n## 国内AI政策動向\n### (2025/11/04) 見出し\n- https://example.jp/\n"
	is, err := compose.ParseMarkdown("fm.md", []byte(md))
	if err != nil {
		t.Fatal(err)
	}
	if is.Period != want {
		t.Errorf("front matter period %q", is.Period)
	}
}
