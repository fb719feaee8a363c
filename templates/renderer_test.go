package templates_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/templates"
)

func TestNewRequiresSenderDetails(t *testing.T) {
	_, err := templates.New(templates.Config{WebURL: "ftp://x"})
	if !errors.Is(err, templates.ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	for _, w := range []string{"SenderName", "PostalAddress", "Contact", "WebURL"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %s: %v", w, err)
		}
	}
}

// TestEscaping feeds hostile editor text and reader values: everything is
// escaped, only the theme's markup is HTML.
func TestEscaping(t *testing.T) {
	r := newRenderer(t)
	is := &compose.Issue{
		Slug: "esc", Title: `<b>題</b> & "引用"`, Intro: []string{`<img src=x onerror=alert(1)>前書き`},
		Sections: []compose.Section{{
			Title: `<script>alert(1)</script>`, Region: audience.JP, Kind: audience.Policy,
			Items: []compose.Item{{
				Headline: `見出し<a href="https://evil.example">罠</a>`,
				Body:     []string{`**太字**ではない <i>斜体</i>`},
				Links:    []string{`javascript:alert(1)`, `https://ok.example/?a=1&b=<2>`},
				Region:   audience.JP, Topics: []audience.Topic{audience.Policy},
			}},
		}},
	}
	sel, err := templates.SelectAll(is)
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Render(is, sel)
	if err != nil {
		t.Fatal(err)
	}
	html, text, err := v.Personalize(templates.Personal{
		Name:           "<b>山田</b>\r\nBcc: x",
		UnsubscribeURL: `https://u.example/x?a=1&b="2"`,
		PreferencesURL: "https://p.example/y",
	})
	if err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, html)
	for _, tag := range []string{"script", "img", "b", "i"} {
		if n := len(findAll(doc, tag)); n > 0 {
			t.Errorf("editor or reader text became %d <%s> elements", n, tag)
		}
	}
	for _, a := range findAll(doc, "a") {
		if h := a.Attr; strings.Contains(fmt.Sprint(h), "evil") || strings.Contains(fmt.Sprint(h), "javascript") {
			t.Errorf("unsafe link survived: %v", h)
		}
	}
	for _, w := range []string{"&lt;script&gt;", "&lt;b&gt;山田&lt;/b&gt;", `b=&#34;2&#34;`, "**太字**"} {
		if !bytes.Contains(html, []byte(w)) {
			t.Errorf("HTML lacks escaped %q", w)
		}
	}
	// The text part is plain: the text as written, the name on one line.
	for _, w := range []string{"<script>alert(1)</script>", "<b>山田</b>  Bcc: x 様"} {
		if !bytes.Contains(text, []byte(w)) {
			t.Errorf("text lacks %q", w)
		}
	}
	if _, _, err := v.Personalize(templates.Personal{UnsubscribeURL: "javascript:alert(1)", PreferencesURL: "/relative"}); !errors.Is(err, templates.ErrInvalidPersonal) {
		t.Errorf("bad links: got %v, want ErrInvalidPersonal", err)
	}
}

func TestRenderRejectsPlaceholderText(t *testing.T) {
	is := handIssue()
	is.Sections[0].Items[0].Body = []string{"TAYORI-PH-9f3c2a-UNSUBSCRIBE"}
	sel, _ := templates.SelectAll(is)
	if _, err := newRenderer(t).Render(is, sel); !errors.Is(err, templates.ErrInvalidIssue) {
		t.Errorf("got %v, want ErrInvalidIssue", err)
	}
}

// renderAll renders the whole hand-made issue.
func renderAll(t *testing.T) *templates.Variant {
	t.Helper()
	is := handIssue()
	sel, _ := templates.SelectAll(is)
	v, err := newRenderer(t).Render(is, sel)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPersonalize(t *testing.T) {
	v := renderAll(t)
	a, at, _ := v.Personalize(testPersonal)
	b, bt, _ := v.Personalize(templates.Personal{UnsubscribeURL: "https://x.example/u/2", PreferencesURL: "https://x.example/p/2"})
	for _, part := range [][]byte{a, at, b, bt} {
		if bytes.Contains(part, []byte("TAYORI-PH-")) {
			t.Error("placeholder left in output")
		}
	}
	if !bytes.Contains(b, []byte("購読者の皆様")) || !bytes.Contains(bt, []byte("購読者の皆様")) {
		t.Error("anonymous greeting missing")
	}
	if bytes.Contains(b, []byte("山田")) || bytes.Contains(bt, []byte(testPersonal.UnsubscribeURL)) {
		t.Error("one reader's values in another's copy")
	}
	// A very long name is cut on a character boundary.
	long := testPersonal
	long.Name = strings.Repeat("長", 1000)
	lh, lt, err := v.Personalize(long)
	if err != nil {
		t.Fatal(err)
	}
	for i, part := range [][]byte{lh, lt} {
		base := bytes.Count([][]byte{a, at}[i], []byte("長")) // 所長 in the items
		if n := bytes.Count(part, []byte("長")) - base; n != 40 {
			t.Errorf("long name: %d characters kept, want 40", n)
		}
	}
	// Append into a buffer gives the same bytes.
	buf := v.AppendHTML(make([]byte, 0, 8), testPersonal)
	if !bytes.Equal(buf, a) {
		t.Error("AppendHTML differs from Personalize")
	}
	if got := v.AppendText([]byte("prefix:"), testPersonal); !bytes.Equal(got[len("prefix:"):], at) {
		t.Error("AppendText does not append")
	}
}

// TestFixedAndSlots: the fixed pieces with the slots' values between them
// are exactly the personalised parts, for several readers.
func TestFixedAndSlots(t *testing.T) {
	v := renderAll(t)
	readers := []templates.Personal{testPersonal,
		{Name: "", UnsubscribeURL: "https://x.example/u/2", PreferencesURL: "https://x.example/p/2"},
		{Name: "<b>&\"太郎\"</b>\n", UnsubscribeURL: "https://x.example/u?a=1&b=2", PreferencesURL: "https://x.example/p/3"}}
	for _, p := range readers {
		html, text, err := v.Personalize(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range []struct {
			name  string
			fixed []string
			slot  func([]byte, int, templates.Personal) []byte
			want  []byte
		}{{"text", v.TextFixed(), v.AppendTextSlot, text}, {"html", v.HTMLFixed(), v.AppendHTMLSlot, html}} {
			if len(part.fixed) < 4 {
				t.Errorf("%s: %d fixed pieces, want at least 4 (greeting and two links)", part.name, len(part.fixed))
			}
			var got []byte
			for i, f := range part.fixed {
				if i > 0 {
					got = part.slot(got, i-1, p)
				}
				got = append(got, f...)
			}
			if !bytes.Equal(got, part.want) {
				t.Errorf("%s for %q: fixed pieces and slots differ from Personalize", part.name, p.Name)
			}
		}
	}
}

func TestRenderCache(t *testing.T) {
	r := newRenderer(t)
	is := handIssue()
	sel, _ := templates.SelectAll(is)
	v1, _ := r.Render(is, sel)
	v2, _ := r.Render(is, sel)
	if v1 != v2 {
		t.Error("second Render of the same variant rendered again")
	}
	// The same content in another value (as loaded again from the
	// database) hits the cache.
	if v, _ := r.Render(handIssue(), sel); v != v1 {
		t.Error("an equal issue missed the cache")
	}
	// An edit under the same slug renders afresh.
	edited := handIssue()
	edited.Sections[0].Items[0].Headline = "訂正：" + edited.Sections[0].Items[0].Headline
	if v, _ := r.Render(edited, sel); v == v1 || !strings.Contains(string(v.AppendText(nil, testPersonal)), "訂正：") {
		t.Error("an edited issue got the cached variant of the earlier version")
	}
	r.Forget(is.Slug)
	v3, _ := r.Render(is, sel)
	if v3 == v1 {
		t.Error("Forget kept the variant")
	}
	// A small cache evicts.
	small, _ := templates.New(templates.Config{SenderName: "a", PostalAddress: "b", Contact: "c", MaxVariants: 1})
	w1, _ := small.Render(is, sel)
	eu, _ := templates.Select(is, prefs([]audience.Region{audience.EU}, audience.StandardTopics...))
	_, _ = small.Render(is, eu)
	if w2, _ := small.Render(is, sel); w2 == w1 {
		t.Error("MaxVariants 1 kept two variants")
	}
}

// TestConcurrentRender renders and personalises from many goroutines; run
// with -race. Every copy of the same variant must be identical.
func TestConcurrentRender(t *testing.T) {
	r := newRenderer(t)
	is := handIssue()
	ps := []audience.Prefs{audience.All(), variants[1].prefs, variants[2].prefs, prefs([]audience.Region{audience.JP}, audience.Policy)}
	want := make([][]byte, len(ps))
	for i, p := range ps {
		sel, _ := templates.Select(is, p)
		// A separate renderer, so that the goroutines below render too.
		v, err := newRenderer(t).Render(is, sel)
		if err != nil {
			t.Fatal(err)
		}
		want[i], _, _ = v.Personalize(testPersonal)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for j := range 20 {
				i := (g + j) % len(ps)
				sel, err := templates.Select(is, ps[i])
				if err != nil {
					t.Error(err)
					return
				}
				if j%5 == 0 {
					r.Forget(is.Slug)
				}
				v, err := r.Render(is, sel)
				if err != nil {
					t.Error(err)
					return
				}
				h, _, err := v.Personalize(testPersonal)
				if err != nil || !bytes.Equal(h, want[i]) {
					t.Errorf("goroutine %d: variant %d differs (err %v)", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzCheckLink: the fast path for plain links accepts nothing url.Parse
// would refuse or read as other than an absolute http(s) URL with a host.
func FuzzCheckLink(f *testing.F) {
	for _, s := range []string{"https://news.example.go.jp/u/v1.abc-DEF_ghi", "http://127.0.0.1:8080/p/x", "https://x:/a",
		"https://-x/", "https://a..b/", "javascript:alert(1)", "https://例え.jp/", "https://x.example/a%zz", "https://:80/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := templates.Personal{UnsubscribeURL: s, PreferencesURL: "https://x.example/p"}.Check()
		if err != nil {
			return
		}
		u, perr := url.Parse(s)
		if perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			t.Fatalf("Check accepted %q, which url.Parse reads as %+v (%v)", s, u, perr)
		}
	})
}

// The editor's link labels become the anchor text (the URL still shown
// beside it) and the closing paragraphs come after the last section, in
// both parts.
func TestRenderLabelsAndClosing(t *testing.T) {
	is := handIssue()
	it := &is.Sections[0].Items[0]
	it.LinkLabels = make([]string, len(it.Links))
	it.LinkLabels[0] = "総務省の発表資料"
	is.Closing = []string{"今月もお読みいただき、ありがとうございました。"}
	got := render(t, newRenderer(t), is, audience.All())
	html, text := string(got.html), string(got.text)
	if !strings.Contains(html, ">総務省の発表資料</a>") || !strings.Contains(html, it.Links[0]+"</span>") {
		t.Errorf("the label is not the anchor text of %s", it.Links[0])
	}
	if !strings.Contains(text, "▸ 総務省の発表資料\n  "+it.Links[0]) {
		t.Errorf("text part: no label before the URL:\n%s", text)
	}
	for part, s := range map[string]string{"html": html, "text": text} {
		c := strings.Index(s, "今月もお読みいただき")
		if c < 0 || c < strings.LastIndex(s, it.Links[0]) || c > strings.Index(s, "配信停止") {
			t.Errorf("%s: the closing is not between the last item and the footer", part)
		}
	}
}
