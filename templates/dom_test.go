package templates_test

import (
	"bytes"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/tayori-news/tayori/audience"
)

func parseHTML(t *testing.T, b []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.Data == tag {
			out = append(out, d)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func textContent(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// decodeURL undoes percent-encoding, so that a URL and the form
// html/template normalises it to in an href ("®" → "%c2%ae") compare equal.
func decodeURL(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}

// blockOf returns the nearest ancestor of n that is a block element.
func blockOf(n *html.Node) *html.Node {
	for p := n.Parent; p != nil; p = p.Parent {
		switch p.Data {
		case "p", "div", "td", "li", "h1", "h2", "h3":
			return p
		}
	}
	return nil
}

const refusal = "受信を拒否"

// TestDOM walks the HTML of every variant of every sample and checks
// checklist items 30 (特電法 display), 39 (HTML quality) and 40 (the text
// part carries every heading and URL of the HTML).
func TestDOM(t *testing.T) {
	r := newRenderer(t)
	maxWidthRE := regexp.MustCompile(`max-width:\s*(\d+)px`)
	for _, s := range samples(t) {
		for _, vr := range variants {
			t.Run(s.name+"/"+vr.name, func(t *testing.T) {
				got := render(t, r, s.issue, vr.prefs)
				doc := parseHTML(t, got.html)
				text := string(got.text)

				// 39: language, charset, colour scheme, title.
				if h := findAll(doc, "html"); len(h) != 1 || attr(h[0], "lang") != "ja" {
					t.Error(`want <html lang="ja">`)
				}
				if !bytes.HasPrefix(got.html, []byte("<!doctype html>\n<html lang=\"ja\"")) {
					t.Error("want the document to start with <!doctype html><html lang=\"ja\">")
				}
				var charset, scheme bool
				for _, m := range findAll(doc, "meta") {
					charset = charset || strings.EqualFold(attr(m, "charset"), "utf-8")
					scheme = scheme || (attr(m, "name") == "color-scheme" && strings.Contains(attr(m, "content"), "dark"))
				}
				if !charset || !scheme {
					t.Errorf("meta charset utf-8: %v, color-scheme: %v", charset, scheme)
				}
				if ti := findAll(doc, "title"); len(ti) != 1 || textContent(ti[0]) != got.v.Subject {
					t.Errorf("want <title>%s</title>", got.v.Subject)
				}
				// 39: layout tables, images, forbidden elements, links.
				for _, tb := range findAll(doc, "table") {
					if attr(tb, "role") != "presentation" {
						t.Errorf("table without role=presentation: %v", tb.Attr)
					}
				}
				for _, im := range findAll(doc, "img") {
					if !hasAttr(im, "alt") {
						t.Error("img without alt")
					}
				}
				for _, tag := range []string{"script", "form", "iframe", "video", "object", "embed"} {
					if n := len(findAll(doc, tag)); n > 0 {
						t.Errorf("%d <%s> elements", n, tag)
					}
				}
				for _, l := range findAll(doc, "link") {
					if strings.Contains(attr(l, "rel"), "stylesheet") {
						t.Error("external stylesheet")
					}
				}
				for _, a := range findAll(doc, "a") {
					if href := attr(a, "href"); !strings.HasPrefix(href, "https://") {
						t.Errorf("link not https: %q", href)
					}
					if lt := strings.TrimSpace(textContent(a)); lt == "" || lt == "こちら" || lt == "ここ" {
						t.Errorf("link text %q does not describe the link", lt)
					}
				}
				widest := 0
				for d := range doc.Descendants() {
					if d.Type != html.ElementNode {
						continue
					}
					for _, m := range maxWidthRE.FindAllStringSubmatch(attr(d, "style"), -1) {
						w, _ := strconv.Atoi(m[1])
						widest = max(widest, w)
					}
					if w := attr(d, "width"); w != "" && !strings.HasSuffix(w, "%") {
						if n, err := strconv.Atoi(w); err != nil || n > 600 {
							t.Errorf("<%s width=%q> is not a width of at most 600", d.Data, w)
						}
					}
				}
				if widest == 0 || widest > 600 {
					t.Errorf("outer container max-width %dpx, want <= 600", widest)
				}
				// §5: the hidden preheader is the first element of the body.
				body := findAll(doc, "body")[0]
				first := body.FirstChild
				for first != nil && first.Type != html.ElementNode {
					first = first.NextSibling
				}
				if first == nil || first.Data != "div" || !strings.Contains(attr(first, "style"), "display:none") || strings.TrimSpace(textContent(first)) == "" {
					t.Error("the first element of the body is not the hidden preheader")
				}
				// A partial copy's preheader names only its own items.
				if got.v.Key != "all" && first != nil {
					var heads []string
					for _, h := range findAll(doc, "h3") {
						heads = append(heads, textContent(h))
					}
					pre := strings.TrimRight(strings.TrimSpace(textContent(first)), "\u2007\u034f")
					for seg := range strings.SplitSeq(pre, "／") {
						seg = strings.TrimSuffix(seg, "…")
						if !slices.ContainsFunc(heads, func(h string) bool { return strings.HasPrefix(h, seg) }) {
							t.Errorf("preheader mentions %q, which is not in this copy", seg)
						}
					}
				}

				// 30: the unsubscribe link with the statement in the same
				// block; sender name, postal address and contact.
				var unsub, prefs bool
				for _, a := range findAll(doc, "a") {
					switch attr(a, "href") {
					case testPersonal.UnsubscribeURL:
						unsub = true
						if b := blockOf(a); b == nil || b.Data != "p" || !strings.Contains(textContent(b), refusal) {
							t.Error("the unsubscribe link and the refusal statement do not share a block element")
						}
					case testPersonal.PreferencesURL:
						prefs = true
					}
				}
				if !unsub || !prefs {
					t.Errorf("unsubscribe link: %v, preferences link: %v", unsub, prefs)
				}
				footer := textContent(doc)
				for _, w := range []string{testConfig.SenderName, testConfig.PostalAddress, testConfig.Contact} {
					if !strings.Contains(footer, w) {
						t.Errorf("HTML lacks %q", w)
					}
					if !strings.Contains(text, w) {
						t.Errorf("text lacks %q", w)
					}
				}
				// 30 in the text part: the statement is on the line just
				// before the unsubscribe URL.
				lines := strings.Split(text, "\n")
				ok := false
				for i, l := range lines {
					if l == testPersonal.UnsubscribeURL && i > 0 && strings.Contains(strings.Join(lines[max(0, i-2):i], ""), refusal) {
						ok = true
					}
				}
				if !ok {
					t.Error("text part: unsubscribe URL not on its own line right after the refusal statement")
				}

				// 40: every heading and every URL of the HTML is in the text.
				for _, tag := range []string{"h1", "h2"} {
					for _, h := range findAll(doc, tag) {
						if w := textContent(h); !strings.Contains(unwrap(text), w) {
							t.Errorf("text lacks heading %q", w)
						}
					}
				}
				textURLs := map[string]bool{}
				for _, u := range urlRE.FindAllString(text, -1) {
					textURLs[decodeURL(u)] = true
				}
				for _, a := range findAll(doc, "a") {
					if u := attr(a, "href"); !textURLs[decodeURL(u)] {
						t.Errorf("text lacks the URL %s", u)
					}
				}
				if n := len(findAll(doc, "h3")); n != got.v.Items {
					t.Errorf("%d h3, variant says %d items", n, got.v.Items)
				}
			})
		}
	}
}

// unwrap joins the text part's wrapped lines back together: a line break
// and the indentation that follows are removed.
func unwrap(text string) string {
	return regexp.MustCompile(`\n *`).ReplaceAllString(text, "")
}

// TestTextPart checks the plain-text part: lines short, every body
// paragraph present, and no space put between two Japanese characters that
// the source did not have (what html2text does).
func TestTextPart(t *testing.T) {
	r := newRenderer(t)
	for _, s := range samples(t) {
		got := render(t, r, s.issue, audience.All())
		text := string(got.text)
		if !utf8.ValidString(text) {
			t.Fatalf("%s: text is not valid UTF-8", s.name)
		}
		var source strings.Builder
		for _, sec := range s.issue.Sections {
			source.WriteString(sec.Title + "\n" + sec.Note + "\n")
			for _, it := range sec.Items {
				source.WriteString(it.Headline + "\n")
				for _, p := range it.Body {
					source.WriteString(p + "\n")
					if !strings.Contains(strings.ReplaceAll(unwrap(text), " ", ""), strings.ReplaceAll(p, " ", "")) {
						t.Errorf("%s: text lacks the paragraph %.60q…", s.name, p)
					}
				}
			}
		}
		src := source.String()
		for i, l := range strings.Split(text, "\n") {
			if len(l) > 300 && !urlRE.MatchString(l) {
				t.Errorf("%s: line %d is %d bytes: %.60q…", s.name, i+1, len(l), l)
			}
			if len(l) > 998 {
				t.Errorf("%s: line %d is %d bytes, over RFC 5322's 998", s.name, i+1, len(l))
			}
			rs := []rune(l)
			for j := 1; j+1 < len(rs); j++ {
				if rs[j] == ' ' && isJapanese(rs[j-1]) && isJapanese(rs[j+1]) {
					if trio := string(rs[j-1 : j+2]); !strings.Contains(src, trio) && !strings.Contains(testPersonal.Name+" 様", trio) {
						t.Errorf("%s: line %d: space inserted in %q", s.name, i+1, trio)
					}
				}
			}
		}
	}
}

func isJapanese(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) || strings.ContainsRune("、。「」『』（）", r)
}
