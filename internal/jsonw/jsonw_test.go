package jsonw

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uo\te`, "tab\tnl\n\x00\x7f", "受付 🎌", "bad \xff\xfe end"} {
		out := AppendString([]byte("x"), s)
		var got string
		if err := json.Unmarshal(out[1:], &got); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", s, out[1:], err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = string([]rune(s)) // invalid bytes become U+FFFD
		}
		if got != want || out[0] != 'x' {
			t.Errorf("%q round-trips to %q", s, got)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("受付 \"x\" \xff")
	f.Fuzz(func(t *testing.T, s string) {
		var got string
		if err := json.Unmarshal(AppendString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Errorf("%q round-trips to %q", s, got)
		}
	})
}
