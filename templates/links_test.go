package templates_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/templates"
)

// countedLinks rewrites every item link to a counting redirect that names
// the item and link, as package clicks does with a signed token.
func countedLinks(key string) *templates.Links {
	return &templates.Links{Key: key, URL: func(item, link int) string {
		return fmt.Sprintf("https://news.example.go.jp/c/%s-i%d-l%d", key, item, link)
	}}
}

// TestGoldenCountedLinks renders the hand fixture with its item links
// rewritten (a list that counts clicks): the anchors and the text part go
// through the redirect, the HTML part still shows each URL as written,
// and the reader's own links (unsubscribe, preferences) and the web copy
// are left alone.
func TestGoldenCountedLinks(t *testing.T) {
	r := newRenderer(t)
	is := handIssue()
	for _, vr := range variants[:2] {
		t.Run(vr.name, func(t *testing.T) {
			sel, err := templates.Select(is, vr.prefs)
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.RenderLinks(is, sel, countedLinks("s7"))
			if err != nil {
				t.Fatal(err)
			}
			html, text, err := v.Personalize(testPersonal)
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join("testdata", "hand.counted."+vr.name)
			golden(t, base+".html", html)
			golden(t, base+".txt", text)

			hrefs := regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(string(html), -1)
			counted := 0
			for _, h := range hrefs {
				u := strings.ReplaceAll(h[1], "&amp;", "&")
				switch {
				case strings.Contains(u, "/c/s7-"):
					counted++
					if !strings.Contains(string(text), u) {
						t.Errorf("text part lacks the counted link %s", u)
					}
				case strings.Contains(u, "/u/") || strings.Contains(u, "/prefs/") || strings.Contains(u, "/issues/") || strings.Contains(u, "/contact"):
				default:
					t.Errorf("item link %s not rewritten", u)
				}
			}
			if counted == 0 {
				t.Fatal("no link rewritten")
			}
			for _, own := range []string{testPersonal.UnsubscribeURL, testPersonal.PreferencesURL} {
				if !strings.Contains(string(text), own) {
					t.Errorf("text part lacks the reader's link %s", own)
				}
			}
		})
	}
}

// TestCountedLinksCache: a rewritten variant is cached apart from the
// variant as written and from another send's, and Render after
// RenderLinks still gives the links as written.
func TestCountedLinksCache(t *testing.T) {
	r := newRenderer(t)
	is := handIssue()
	sel, err := templates.Select(is, audience.All())
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.RenderLinks(is, sel, countedLinks("s1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.RenderLinks(is, sel, countedLinks("s2"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := r.Render(is, sel)
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a == plain {
		t.Fatal("rewritten variants share a cache entry")
	}
	if again, _ := r.RenderLinks(is, sel, countedLinks("s1")); again != a {
		t.Error("the same rewriting is rendered twice")
	}
	h, _, _ := plain.Personalize(testPersonal)
	if strings.Contains(string(h), "/c/") {
		t.Error("Render rewrote links")
	}
	if _, err := r.RenderLinks(is, sel, &templates.Links{URL: countedLinks("x").URL}); err == nil {
		t.Error("Links without a Key accepted")
	}
}
