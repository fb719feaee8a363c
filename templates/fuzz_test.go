package templates_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/templates"
)

// FuzzRender renders an issue whose editor text is the fuzzer's input and
// checks that the text never turns into markup (the element count is that
// of the theme alone), that no item is lost, that valid UTF-8 stays valid,
// and that no text line exceeds 998 bytes.
func FuzzRender(f *testing.F) {
	for _, s := range [][3]string{
		{"見出し", "本文。", "https://example.jp/a"},
		{"<script>alert(1)</script>", "<b>太字</b>&amp;", "javascript:alert(1)"},
		{"TAYORI-PH-", "{{.Hermes}}", "https://example.jp/?a=1&b=2®=3"},
		{strings.Repeat("長", 500), strings.Repeat("https://x.example/", 80), ""},
		{"\xff\xfe", "\r\n\t\x00", "http://"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	r, err := templates.New(testConfig)
	if err != nil {
		f.Fatal(err)
	}
	base := func(headline, body, link string) *compose.Issue {
		return &compose.Issue{Slug: "fuzz", Title: "題" + headline, Sections: []compose.Section{{
			Title: body, Region: audience.JP, Kind: audience.Policy,
			Items: []compose.Item{
				{Headline: headline, Body: []string{body}, Links: []string{link}, Region: audience.JP, Topics: []audience.Topic{audience.Policy}},
				{Headline: "固定", Body: []string{"固定の本文"}, Region: audience.JP, Topics: []audience.Topic{audience.Policy}},
			},
		}}}
	}
	countElems := func(b []byte) int {
		doc, err := html.Parse(bytes.NewReader(b))
		if err != nil {
			return -1
		}
		n := 0
		for d := range doc.Descendants() {
			if d.Type == html.ElementNode {
				n++
			}
		}
		return n
	}
	// Element counts of the theme for a web link, another link and none:
	// only http(s) links become anchors, blank ones are left out.
	wantFor := map[string]int{}
	for kind, l := range map[string]string{"web": "https://example.jp/", "other": "x", "none": " "} {
		wantFor[kind] = countElems(render(f, r, base("a", "b", l), audience.All()).html)
	}
	kindOf := func(link string) string {
		switch {
		case strings.TrimSpace(link) == "":
			return "none"
		case strings.HasPrefix(link, "https://") || strings.HasPrefix(link, "http://"):
			return "web"
		}
		return "other"
	}
	f.Fuzz(func(t *testing.T, headline, body, link string) {
		is := base(headline, body, link)
		sel, err := templates.SelectAll(is)
		if err != nil {
			t.Fatal(err)
		}
		r.Forget("fuzz")
		v, err := r.Render(is, sel)
		if err != nil {
			if strings.Contains(headline+body+link, "TAYORI-PH-") {
				return // rejected on purpose
			}
			t.Fatalf("render: %v", err)
		}
		if v.Items != 2 {
			t.Fatalf("%d items, want 2", v.Items)
		}
		h, x, err := v.Personalize(testPersonal)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := countElems(h), wantFor[kindOf(link)]; got != want {
			t.Fatalf("%d elements, want %d: editor text became markup", got, want)
		}
		// Valid in, valid out (each field on its own: two invalid halves
		// can join into a valid character).
		if utf8.ValidString(headline) && utf8.ValidString(body) && utf8.ValidString(link) && (!utf8.Valid(h) || !utf8.Valid(x)) {
			t.Fatal("invalid UTF-8 in output")
		}
		for l := range bytes.SplitSeq(x, []byte("\n")) {
			if len(l) > 998 {
				t.Fatalf("text line of %d bytes", len(l))
			}
		}
	})
}
