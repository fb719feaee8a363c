package templates

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func wrapped(s string) string {
	var b strings.Builder
	wrapTo(&b, s, "", "  ")
	return b.String()
}

func TestWrap(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"Short", "短い文。", "短い文。\n"},
		{
			// 40 full-width characters: 36 fit in 72 columns.
			"Japanese", strings.Repeat("あ", 40),
			strings.Repeat("あ", 36) + "\n  " + strings.Repeat("あ", 4) + "\n",
		},
		{
			// 。 may not start a line: it stays with the character before.
			"NoLineStart", strings.Repeat("あ", 36) + "。い",
			strings.Repeat("あ", 35) + "\n  あ。い\n",
		},
		{
			// 「 may not end a line: it moves down with what follows.
			"NoLineEnd", strings.Repeat("あ", 35) + "「い」",
			strings.Repeat("あ", 35) + "\n  「い」\n",
		},
		{
			"URLNeverSplit", "資料：https://example.com/" + strings.Repeat("a", 100),
			"資料：\n  https://example.com/" + strings.Repeat("a", 100) + "\n",
		},
		{
			"LatinWordsAtSpaces", strings.Repeat("word ", 20),
			strings.TrimSpace(strings.Repeat("word ", 14)) + "\n  " + strings.TrimSpace(strings.Repeat("word ", 6)) + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wrapped(tt.in); got != tt.want {
				t.Errorf("wrap(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzWrap checks that wrapping loses no character, adds no space, and
// keeps every line under the RFC 5322 limit.
func FuzzWrap(f *testing.F) {
	for _, s := range []string{
		"",
		"総務省はAIセキュリティ分科会の第4回、第5回会合を開催した。",                                     // plain Japanese
		"欧州委員会は2025年11月19日、Digital Omnibus on AIを提案した。",                       // mixed scripts
		"https://www.pib.gov.in/PressReleasePage.aspx?PRID=2186639®=3&lang=2", // URL with ®
		strings.Repeat("x", 2000), // an unbreakable token over 998 bytes
		"「」「」「」（（（）））。。。、、、",      // only kinsoku characters
		"a\tb  c\n\nd",     // tabs, runs of spaces, newlines
		"\xff\xfe invalid", // invalid UTF-8
		"\u3000字下げ\r\n改行",  // ideographic space is text; CR LF are breaks
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := wrapped(s)
		for _, l := range strings.Split(out, "\n") {
			if len(l) > 998 {
				t.Fatalf("line of %d bytes", len(l))
			}
		}
		strip := func(s string) string {
			return strings.Map(func(r rune) rune {
				if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
					return -1
				}
				return r
			}, s)
		}
		if strip(out) != strip(s) {
			t.Fatalf("content changed:\n in %q\nout %q", s, out)
		}
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("split a character: %q", out)
		}
	})
}
