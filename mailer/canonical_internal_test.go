package mailer

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

// canonicalNaive is the definition: CRLF line ends only, ending in CRLF.
func canonicalNaive(raw []byte) bool {
	n := bytes.Count(raw, crlf)
	return len(raw) > 0 && bytes.HasSuffix(raw, crlf) &&
		bytes.Count(raw, []byte("\n")) == n && bytes.Count(raw, []byte("\r")) == n
}

func FuzzIsCanonical(f *testing.F) {
	for _, s := range []string{"", "\r\n", "a\r\n", "a\nb\r\n", "\n\r\n", "a\r\rb\r\n", "a\r\n\r\n", "\r\r\n", "a\r\nb", "\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if got, want := isCanonical(raw), canonicalNaive(raw); got != want {
			t.Fatalf("isCanonical(%q) = %v, want %v", raw, got, want)
		}
	})
}

// Builder output is canonical (Built.canonical promises it, so that
// StartBuilt skips the check), with and without DKIM, whatever line ends
// the bodies and the header values had.
func FuzzBuiltIsCanonical(f *testing.F) {
	f.Add("件名", "本文\n二行目\r三行目\r\n", "<p>a</p>\r", "山田 太郎")
	f.Add("x", "a", "", "")
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	signer, err := NewDKIMSignerWithKey("news.example.go.jp", "s1", key)
	if err != nil {
		f.Fatal(err)
	}
	plain, _ := NewBuilder(BuilderOptions{})
	signed, _ := NewBuilder(BuilderOptions{DKIM: signer})
	f.Fuzz(func(t *testing.T, subject, text, html, name string) {
		m := &Message{
			From: Address{Name: "AI政策動向", Email: "newsletter@news.example.go.jp"}, To: Address{Name: name, Email: "taro@example.jp"},
			Subject: subject, Text: text, HTML: html,
			ListID: "monthly.news.example.go.jp", UnsubscribeURL: "https://news.example.go.jp/u/x",
		}
		for _, b := range []*Builder{plain, signed} {
			built, err := b.Build(m)
			if err != nil {
				return // refused input is the validation tests' business
			}
			if !built.canonical || !isCanonical(built.Raw) {
				t.Fatalf("built message is not canonical: %q", built.Raw)
			}
		}
	})
}
