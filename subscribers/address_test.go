package subscribers_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tayori-news/tayori/subscribers"
)

func TestNormalizeEmail(t *testing.T) {
	good := []struct{ in, want string }{
		{"taro@example.jp", "taro@example.jp"},
		{"  Taro.Yamada@Example.CO.JP \n", "Taro.Yamada@example.co.jp"},
		{"user+tag@example.com", "user+tag@example.com"},
		{"o'brien@example.ie", "o'brien@example.ie"},
		{"a@例え.jp", "a@xn--r8jz45g.jp"},
		{"a@ＥＸＡＭＰＬＥ.jp", "a@example.jp"}, // full-width letters map (UTS 46)
		{"a@bücher.de", "a@xn--bcher-kva.de"},
		{"a@xn--r8jz45g.jp", "a@xn--r8jz45g.jp"},
		{"\u3000a@example.jp\u3000", "a@example.jp"}, // ideographic spaces trimmed
		{strings.Repeat("l", 64) + "@example.jp", strings.Repeat("l", 64) + "@example.jp"},
	}
	for _, c := range good {
		got, err := subscribers.NormalizeEmail(c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, reason string }{
		{"", "empty"},
		{"   ", "empty"},
		{"taro.example.jp", "missing @"},
		{"@example.jp", "missing local part"},
		{"taro@", "missing domain"},
		{"taro@example.jp\r\nBcc: x@evil.example", "line break"},
		{"taro\n@example.jp", "line break"},
		{"ta ro@example.jp", "white space"},
		{"taro@exa mple.jp", "white space"},
		{"taro\x00@example.jp", "control"},
		{"taro\x7f@example.jp", "control"},
		{"taro@localhost", "two labels"},
		{"taro@[192.0.2.1]", "literals"},
		{"\"taro\"@example.jp", "quoted"},
		{".taro@example.jp", "dot"},
		{"ta..ro@example.jp", "dot"},
		{"太郎@example.jp", "non-ASCII local part"},
		{"a@b@example.jp", "contains '@'"},
		{"a(b)@example.jp", "contains '('"},
		{strings.Repeat("l", 65) + "@example.jp", "local part longer"},
		{"a@" + strings.Repeat("d", 64) + ".jp", "domain"},
		{"a@" + strings.Repeat("abcdefghi.", 26) + "jp", "domain"},
		{"a@-example.jp", "domain"},
		{"a@example.jp.", "ends with a dot"},
		{"a@example.123", "numeric"},
		{"a@exa_mple.jp", "domain"},
		{strings.Repeat("x", subscribers.MaxEmailInput+1), "longer than"},
		{"a@example.jp\xff", "UTF-8"},
	}
	for _, c := range bad {
		got, err := subscribers.NormalizeEmail(c.in)
		var fe *subscribers.FieldError
		if !errors.As(err, &fe) || fe.Field != "email" || !errors.Is(err, subscribers.ErrInvalid) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want a FieldError for email", c.in, got, err)
			continue
		}
		if !strings.Contains(fe.Reason, c.reason) {
			t.Errorf("NormalizeEmail(%q): reason %q lacks %q", c.in, fe.Reason, c.reason)
		}
		if len(c.in) > 3 && strings.Contains(err.Error(), strings.TrimSpace(c.in)) {
			t.Errorf("error %q repeats the address", err)
		}
	}
}

// FuzzNormalizeEmail: never panics; accepted output is ASCII, free of
// white space and control characters, within the length limits, and a
// fixed point (normalising it again gives the same address).
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"taro@example.jp",        // plain
		" Taro@Example.JP ",      // trim and case
		"a@例え.jp",                // IDN
		"a@xn--r8jz45g.jp",       // punycode already
		"a@b@c.jp",               // two @
		"a\r\n@x.jp",             // header injection
		"\"q\"@x.jp",             // quoted local part
		"a@[1.2.3.4]",            // literal
		"a@xn--.jp",              // broken punycode
		"a@ß.de",                 // deviation character
		"a@\u200d.jp",            // joiner
		"a@٣.example",            // bidi
		"\xff\xfe@x.jp",          // invalid UTF-8
		strings.Repeat("a", 300), // long
		"a@" + strings.Repeat("ü", 100) + ".jp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := subscribers.NormalizeEmail(in)
		if err != nil {
			if !errors.Is(err, subscribers.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(out) > subscribers.MaxEmailLen || strings.Count(out, "@") != 1 {
			t.Fatalf("%q → %q: bad length or @ count", in, out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] <= ' ' || out[i] >= utf8.RuneSelf {
				t.Fatalf("%q → %q: byte %#x", in, out, out[i])
			}
		}
		again, err := subscribers.NormalizeEmail(out)
		if err != nil || again != out {
			t.Fatalf("not a fixed point: %q → %q → %q, %v", in, out, again, err)
		}
		if _, domain, _ := strings.Cut(out, "@"); domain != strings.ToLower(domain) {
			t.Fatalf("%q: domain not lower-case", out)
		}
	})
}
