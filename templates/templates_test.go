package templates_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testConfig is the sender used by every test.
var testConfig = templates.Config{
	SenderName:    "AI政策動向マンスリー編集部",
	PostalAddress: "〒100-0013 東京都千代田区霞が関1-1-1",
	Contact:       "https://news.example.go.jp/contact",
	WebURL:        "https://news.example.go.jp/issues/{slug}",
}

// testPersonal has URLs with "&" so that escaping shows in the HTML.
var testPersonal = templates.Personal{
	Name:           "山田 太郎",
	UnsubscribeURL: "https://news.example.go.jp/u/k1.AbC-dEf_123?issue=2025-11&s=9",
	PreferencesURL: "https://news.example.go.jp/prefs/k1.AbC-dEf_123?from=mail&s=9",
}

func newRenderer(tb testing.TB) *templates.Renderer {
	tb.Helper()
	r, err := templates.New(testConfig)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// sample is a sample issue from the repository's testdata with the counts
// of its source file.
type sample struct {
	name  string
	path  string // source file, "" for the hand-written fixture
	issue *compose.Issue
}

func samples(tb testing.TB) []sample {
	tb.Helper()
	out := []sample{{name: "hand", issue: handIssue()}}
	for _, n := range []string{"2025-07", "2025-11"} {
		p := filepath.Join("..", "testdata", "aisi-monthly-"+n+".txt")
		is, err := compose.Load(p)
		if err != nil {
			tb.Fatalf("load %s: %v", p, err)
		}
		out = append(out, sample{name: n, path: p, issue: is})
	}
	return out
}

// variants are the readers of the golden tests: everyone, a reader of
// European news only, and a reader of reports only.
var variants = []struct {
	name  string
	prefs audience.Prefs
}{
	{"full", audience.All()},
	{"regions-eu", audience.Prefs{Regions: []audience.Region{audience.EU}, Topics: audience.StandardTopics}},
	{"topics-reports", audience.Prefs{Regions: audience.Regions, Topics: []audience.Topic{audience.Reports}}},
}

// rendered is one personalised copy.
type rendered struct {
	v    *templates.Variant
	html []byte
	text []byte
}

func render(tb testing.TB, r *templates.Renderer, is *compose.Issue, p audience.Prefs) rendered {
	tb.Helper()
	sel, err := templates.Select(is, p)
	if err != nil {
		tb.Fatalf("select %s: %v", p.Key(), err)
	}
	v, err := r.Render(is, sel)
	if err != nil {
		tb.Fatalf("render %s: %v", p.Key(), err)
	}
	h, x, err := v.Personalize(testPersonal)
	if err != nil {
		tb.Fatalf("personalize: %v", err)
	}
	return rendered{v, h, x}
}

func TestGolden(t *testing.T) {
	r := newRenderer(t)
	for _, s := range samples(t) {
		for _, vr := range variants {
			t.Run(s.name+"/"+vr.name, func(t *testing.T) {
				got := render(t, r, s.issue, vr.prefs)
				base := filepath.Join("testdata", s.name+"."+vr.name)
				golden(t, base+".html", got.html)
				golden(t, base+".txt", got.text)
			})
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./templates -run TestGolden -update)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			t.Fatalf("%s: line %d differs (run with -update if intended)\ngot:  %s\nwant: %s", path, i+1, g, w)
		}
	}
}

var (
	urlRE      = regexp.MustCompile(`https?://[^\s<>"]+`)
	itemLineRE = regexp.MustCompile(`(?m)^\s*(?:\d+\.\s*)?\(\d{4}/\d{2}/`)
)

// sourceCounts counts the items and URLs of a plain-text sample directly
// from the file, independently of the importer.
func sourceCounts(t *testing.T, path string) (items int, urls []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return len(itemLineRE.FindAll(data, -1)), urlRE.FindAllString(string(data), -1)
}

func TestSampleCompleteness(t *testing.T) {
	want := map[string][2]int{"2025-07": {24, 34}, "2025-11": {17, 19}}
	r := newRenderer(t)
	for _, s := range samples(t) {
		if s.path == "" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			items, urls := sourceCounts(t, s.path)
			if w := want[s.name]; items != w[0] || len(urls) != w[1] {
				t.Fatalf("source has %d items and %d URLs, want %d and %d", items, len(urls), w[0], w[1])
			}
			got := render(t, r, s.issue, audience.All())
			if got.v.Items != items {
				t.Errorf("variant has %d items, source %d", got.v.Items, items)
			}
			doc := parseHTML(t, got.html)
			if n := len(findAll(doc, "h3")); n != items {
				t.Errorf("HTML has %d item headlines (h3), source %d items", n, items)
			}
			if n := strings.Count(string(got.text), "\n● "); n != items {
				t.Errorf("text has %d items, source %d", n, items)
			}
			hrefs := map[string]bool{}
			for _, a := range findAll(doc, "a") {
				hrefs[decodeURL(attr(a, "href"))] = true
			}
			visible := textContent(doc)
			textURLs := map[string]bool{}
			for _, u := range urlRE.FindAllString(string(got.text), -1) {
				textURLs[u] = true
			}
			for _, u := range urls {
				if !hrefs[decodeURL(u)] {
					t.Errorf("HTML lacks a link to %s", u)
				}
				if !strings.Contains(visible, u) {
					t.Errorf("HTML does not show %s", u)
				}
				if !textURLs[u] {
					t.Errorf("text lacks %s", u)
				}
			}
		})
	}
}

// englishDefaults are hermes's English defaults, none of which may appear.
var englishDefaults = []string{"Hi ", "Hi,", "Yours truly", "Copyright", "Hermes", "hermes", "having trouble", "copy and paste", "All rights reserved"}

func TestNoEnglishDefaults(t *testing.T) {
	r := newRenderer(t)
	for _, s := range samples(t) {
		for _, vr := range variants {
			got := render(t, r, s.issue, vr.prefs)
			for _, part := range [][]byte{got.html, got.text} {
				for _, e := range englishDefaults {
					if i := bytes.Index(part, []byte(e)); i >= 0 {
						t.Errorf("%s/%s: English default %q at byte %d", s.name, vr.name, e, i)
					}
				}
				// The sign-off comma of hermes's default theme.
				if bytes.Contains(part, []byte(testConfig.SenderName+",")) {
					t.Errorf("%s/%s: ASCII comma after the sender's name", s.name, vr.name)
				}
			}
		}
	}
}

func TestSizes(t *testing.T) {
	r := newRenderer(t)
	for _, s := range samples(t) {
		got := render(t, r, s.issue, audience.All())
		// Checklist 31: the whole HTML part under 100 KB, and the legal
		// footer (unsubscribe link, statement, sender's details) inside
		// the first 100 KB even if it were not.
		if len(got.html) >= 100_000 {
			t.Errorf("%s: HTML is %d bytes, want < 100000", s.name, len(got.html))
		}
		end := bytes.LastIndex(got.html, []byte(testConfig.PostalAddress))
		unsub := bytes.Index(got.html, []byte(escapeAttr(testPersonal.UnsubscribeURL)))
		if end < 0 || unsub < 0 || end+len(testConfig.PostalAddress) >= 100_000 || unsub >= 100_000 {
			t.Errorf("%s: footer ends at byte %d, unsubscribe link at %d: want both within 100000", s.name, end, unsub)
		}
		t.Logf("%s: html %d bytes, text %d bytes, footer ends at %d", s.name, len(got.html), len(got.text), end)
	}
}

func escapeAttr(s string) string { return strings.ReplaceAll(s, "&", "&amp;") }

func ExampleSelect() {
	is := handIssue()
	eu := audience.Prefs{Regions: []audience.Region{audience.EU}, Topics: []audience.Topic{audience.Policy, audience.Reports}}
	sel, err := templates.Select(is, eu)
	if err != nil {
		panic(err)
	}
	fmt.Println(sel.Len(), sel.Key())
	_, err = templates.Select(is, audience.Prefs{Regions: []audience.Region{audience.Asia}, Topics: []audience.Topic{audience.Reports}})
	fmt.Println(err)
	// Output:
	// 2 8:09
	// templates: nothing in this issue matches the reader's preferences
}
