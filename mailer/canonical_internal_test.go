package mailer

import (
	"bytes"
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
