package mailer_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tayori-news/tayori/mailer"
)

// cutLayout cuts s at the given byte offsets (moved back to character
// starts) into fixed pieces, and gives the slots the values.
func cutLayout(tb testing.TB, s string, cuts []int, values []string) *mailer.Body {
	tb.Helper()
	fixed := make([]string, 0, len(cuts)+1)
	last := 0
	for _, c := range cuts {
		c = max(last, min(c, len(s)))
		for c > last && c < len(s) && !utf8.RuneStart(s[c]) {
			c--
		}
		fixed = append(fixed, s[last:c])
		last = c
	}
	fixed = append(fixed, s[last:])
	l, err := mailer.NewLayout(fixed...)
	if err != nil {
		tb.Fatal(err)
	}
	b := &mailer.Body{Layout: l}
	for i := range l.Slots() {
		b.Values = append(b.Values, []byte(values[i%len(values)]))
	}
	return b
}

// buildBoth builds m as given (with Bodies) and with the Bodies turned into
// Text and HTML, and fails unless the bytes are identical.
func buildBoth(t *testing.T, b *mailer.Builder, m *mailer.Message) []byte {
	t.Helper()
	got, err := b.Build(m)
	if err != nil {
		t.Fatal(err)
	}
	flat := *m
	flat.TextBody, flat.HTMLBody = nil, nil
	if m.TextBody != nil {
		flat.Text = m.TextBody.String()
	}
	if m.HTMLBody != nil {
		flat.HTML = m.HTMLBody.String()
	}
	want, err := b.Build(&flat)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Raw, want.Raw) {
		n := firstDiffLine(got.Raw, want.Raw)
		t.Fatalf("layout build differs at line %d:\nlayout: %q\nwhole:  %q", n, lineAt(got.Raw, n), lineAt(want.Raw, n))
	}
	return got.Raw
}

// TestLayoutAgrees: a message built from Layouts and values is byte for
// byte the message built from the same text, for every line alignment of
// the fixed pieces, on the first build (which fills the cache) and on
// later ones (which read it).
func TestLayoutAgrees(t *testing.T) {
	b := newBuilder(t, deterministic(mailer.BuilderOptions{}))
	text, html := readFile(t, "issue.txt"), readFile(t, "issue.html")
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"", "山田 太郎 様", "a", "ab", "Taro & <Hanako>", strings.Repeat("長", 40)}
	for round := range 60 {
		// Three slots like a newsletter's (greeting, unsubscribe and
		// preferences links), at random places.
		cuts := []int{rng.IntN(len(html) / 4), len(html)/2 + rng.IntN(len(html)/4), len(html) - rng.IntN(300)}
		tcuts := []int{rng.IntN(len(text) / 3), len(text) - 400 + rng.IntN(200), len(text) - rng.IntN(150)}
		// A name of every length mod 57 shifts the alignment of what
		// follows it.
		name := names[round%len(names)] + strings.Repeat("x", round%57)
		values := []string{name, "https://news.example.go.jp/u/v1.Qk9SZWNpcGllbnQ.c2lnbmF0dXJl", "https://news.example.go.jp/p/v1.abc"}
		m := fixture(t, "taro@example.jp")
		m.Text, m.HTML = "", ""
		m.TextBody = cutLayout(t, text, tcuts, values)
		m.HTMLBody = cutLayout(t, html, cuts, values)
		first := buildBoth(t, b, m)
		second := buildBoth(t, b, m)
		if !bytes.Equal(first, second) {
			t.Fatal("second build from a filled cache differs")
		}
	}
}

// TestLayoutEdgeCases: values with line breaks, CR|LF split across an empty
// value, empty pieces and values, text-only messages.
func TestLayoutEdgeCases(t *testing.T) {
	b := newBuilder(t, deterministic(mailer.BuilderOptions{}))
	long := strings.Repeat("本文の行です。\n", 80)
	cases := []struct {
		name   string
		fixed  []string
		values []string
	}{
		{"no slots", []string{long}, nil},
		{"value with LF", []string{long, long}, []string{"a\nb"}},
		{"value with bare CR at the end", []string{long, "\n" + long}, []string{"x\r"}},
		{"CR and LF split by an empty value", []string{long + "\r", "\n" + long}, []string{""}},
		{"empty pieces", []string{"", long, "", ""}, []string{"v", "", "w"}},
		{"all empty but a value", []string{"", ""}, []string{"only the value"}},
		{"bare CR pieces", []string{strings.Repeat("a\rb", 200), strings.Repeat("c\r", 300)}, []string{"名前"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := mailer.NewLayout(tc.fixed...)
			if err != nil {
				t.Fatal(err)
			}
			body := &mailer.Body{Layout: l}
			for _, v := range tc.values {
				body.Values = append(body.Values, []byte(v))
			}
			m := fixture(t, "taro@example.jp")
			m.Text, m.HTML = "", ""
			m.TextBody = body
			buildBoth(t, b, m) // text only
			m.HTMLBody = body
			buildBoth(t, b, m)
		})
	}
}

func TestLayoutRejectsBadInput(t *testing.T) {
	if _, err := mailer.NewLayout("ok", "\xff bad"); !errors.Is(err, mailer.ErrInvalidMessage) || !strings.Contains(err.Error(), "piece 1") {
		t.Errorf("invalid UTF-8 piece: %v", err)
	}
	if _, err := mailer.NewLayout(); err == nil {
		t.Error("no pieces: no error")
	}
	b := newBuilder(t, deterministic(mailer.BuilderOptions{}))
	l, err := mailer.NewLayout("こんにちは ", " 様")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  func(m *mailer.Message)
		want string
	}{
		{"too few values", func(m *mailer.Message) { m.TextBody = &mailer.Body{Layout: l} }, "TextBody: 0 values for 1 slots"},
		{"invalid UTF-8 value", func(m *mailer.Message) { m.TextBody = &mailer.Body{Layout: l, Values: [][]byte{{0xe3, 0x81}}} }, "value 0 is not valid UTF-8"},
		{"both text and body", func(m *mailer.Message) {
			m.Text = "x"
			m.TextBody = &mailer.Body{Layout: l, Values: [][]byte{nil}}
		}, "given both"},
		{"no layout", func(m *mailer.Message) { m.HTMLBody = &mailer.Body{} }, "HTMLBody: Body without a Layout"},
		{"too big", func(m *mailer.Message) {
			m.HTMLBody = &mailer.Body{Layout: l, Values: [][]byte{bytes.Repeat([]byte("a"), mailer.DefaultMaxBodyBytes)}}
		}, "exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := fixture(t, "taro@example.jp")
			m.Text, m.HTML = "", ""
			m.TextBody = &mailer.Body{Layout: l, Values: [][]byte{[]byte("太郎")}}
			tc.set(m)
			_, err := b.Build(m)
			if !errors.Is(err, mailer.ErrInvalidMessage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an ErrInvalidMessage containing %q", err, tc.want)
			}
		})
	}
}

func FuzzLayoutAgrees(f *testing.F) {
	f.Add(strings.Repeat("本文\n", 100), uint16(5), uint16(300), "山田", "https://x.example/u")
	f.Add(strings.Repeat("a\r", 300), uint16(1), uint16(2), "", "\n")
	f.Add(strings.Repeat("<p>x</p>\r\n", 90), uint16(57), uint16(114), "\r", "")
	b := newBuilder(f, deterministic(mailer.BuilderOptions{}))
	f.Fuzz(func(t *testing.T, s string, c1, c2 uint16, v1, v2 string) {
		if !utf8.ValidString(s) || !utf8.ValidString(v1) || !utf8.ValidString(v2) {
			return
		}
		m := fixture(t, "taro@example.jp")
		m.Text, m.HTML = "", ""
		m.TextBody = cutLayout(t, s, []int{int(c1), int(c1) + int(c2)}, []string{v1, v2})
		m.HTMLBody = cutLayout(t, s, []int{int(c2)}, []string{v2 + v1})
		flat := m.TextBody.String()
		if flat == "" {
			return // a message needs a text part
		}
		buildBoth(t, b, m)
	})
}

func BenchmarkBuildLayout(b *testing.B) {
	text, html := readFile(b, "issue.txt"), readFile(b, "issue.html")
	values := []string{"山田 太郎 様", "https://news.example.go.jp/u/v1.Qk9SZWNpcGllbnQ.c2lnbmF0dXJl"}
	tb := cutLayout(b, text, []int{200, len(text) - 100}, values)
	hb := cutLayout(b, html, []int{300, len(html) - 200}, values)
	bl := newBuilder(b, mailer.BuilderOptions{})
	for _, mode := range []string{"text", "layout"} {
		b.Run(mode, func(b *testing.B) {
			m := fixture(b, "taro@example.jp")
			if mode == "layout" {
				m.Text, m.HTML = "", ""
				m.TextBody, m.HTMLBody = tb, hb
			} else {
				m.Text, m.HTML = tb.String(), hb.String()
			}
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				built, err := bl.AppendBuild(buf, m)
				if err != nil {
					b.Fatal(err)
				}
				buf = built.Raw[:0]
			}
		})
	}
}
