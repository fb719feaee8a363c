package compose_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/compose"
)

// lines splits a source the way the parsers do.
func lines(data []byte) []string {
	s := strings.TrimPrefix(string(data), "\ufeff")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}

func FuzzImportText(f *testing.F) {
	// The two real layouts.
	f.Add(readFile(f, samples[0].path))
	f.Add(readFile(f, samples[1].path))
	// A dash-separated item whose last URL ends in " -".
	f.Add([]byte("日本AISIの活動(7月1日~7月31日)\n-\n(2025/07/05)見出し\n本文\nhttps://a.jp/ -\n"))
	// A numbered item with indented body, CRLF and a BOM.
	f.Add([]byte("\ufeff国内AI政策動向\r\n\r\n  1. (2025/11/04、21)見出し\r\n    本文\r\n    https://a.jp/\r\n"))
	// A region with no items, and a range with a wave dash.
	f.Add([]byte("【米国】(11月1日〜11月30日)\n該当なし\n【欧州】\n(2025/09/30~10/02)英国\n"))
	// Periods mixing "~", the wave dash and the full-width tilde: one
	// issue period (issue 22).
	f.Add([]byte("日本AISIの活動(11月1日~11月30日)\n-\n(2025/11/12)見出し\nhttps://a.jp/\n【米国】（11月1日〜11月30日）\n該当なし\n【欧州】(11月1日～11月30日)\nなし\n"))
	// Broken: unknown heading, bad date, stray URL, invalid UTF-8.
	f.Add([]byte("謎\n日本AISIの活動\n(2025/02/30)x\nhttps://a.jp/\n\xff\n"))
	// Text that looks like Markdown or attributes inside an item.
	f.Add([]byte("日本AISIの活動\n(2025/07/05)見出し {region=us}\n### 本文\n- 箇条\n\\\n<!-- x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		is, err := compose.ImportText("f.txt", data, compose.ImportOptions{})
		if err != nil {
			var list compose.Errors
			var one *compose.Error
			if !errors.As(err, &list) && !errors.As(err, &one) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// No item lost silently: every line that starts an item is an item.
		starts := 0
		for _, l := range lines(data) {
			if compose.IsItemStart(l) {
				starts++
			}
		}
		if items, _ := counts(is); items != starts {
			t.Fatalf("%d lines start an item, but the issue has %d items", starts, items)
		}
		// Round trip through the editor's Markdown.
		var md bytes.Buffer
		if err := compose.WriteMarkdown(&md, is); err != nil {
			t.Fatal(err)
		}
		back, err := compose.ParseMarkdown("f.md", md.Bytes())
		if err != nil {
			t.Fatalf("Markdown of an imported issue does not parse: %v\n%s", err, md.String())
		}
		sameIssue(t, is, back)
	})
}

func FuzzParseMarkdown(f *testing.F) {
	// The golden files of both samples.
	f.Add(readFile(f, "testdata/aisi-monthly-2025-07.md"))
	f.Add(readFile(f, "testdata/aisi-monthly-2025-11.md"))
	// Every feature of the format at once.
	f.Add([]byte(mdSrc))
	// Attribute blocks: quoted, escaped, empty, malformed.
	f.Add([]byte("---\n---\n## x {region=jp kind=policy group=\"a \\\"b\\\" {c}\"}\n### (2025/1/1) y {}\n### z {region=\"eu}\n"))
	// A period with a wave dash in the front matter and a heading.
	f.Add([]byte("---\nperiod: 11月1日〜11月30日\n---\n## 【米国】(11月1日～11月30日)\n該当なし\n"))
	// Front matter problems.
	f.Add([]byte("---\nslug: [\nregion_rules: 1\n---\n"))
	// Escapes and a comment.
	f.Add([]byte("---\n---\n\\# a\n\\- b\n<!-- c\n-->\n## 国内AI政策動向\n### (2025/11/04、21) h\n\\\n"))
	// Labelled links, escapes in labels, and a closing.
	f.Add([]byte("---\n---\n## 国内AI政策動向\n### h\n- [a \\] b](https://a.jp/)\n- <[x](y)>\n- [](z)\n---\n結び\n\\- x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		is, err := compose.ParseMarkdown("f.md", data)
		if err != nil {
			var list compose.Errors
			var one *compose.Error
			if !errors.As(err, &list) && !errors.As(err, &one) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// No item lost silently: every "### " line after the front matter
		// is an item (comments aside, which may hide such lines).
		if !bytes.Contains(data, []byte("<!--")) {
			ls := lines(data)
			closed, starts := false, 0
			for _, l := range ls[1:] {
				if !closed {
					closed = l == "---" || l == "..." || strings.TrimRight(l, " \t\u3000") == "---" || strings.TrimRight(l, " \t\u3000") == "..."
					continue
				}
				t := strings.TrimLeft(l, " \t")
				if strings.HasPrefix(t, "###") && !strings.HasPrefix(t, "####") {
					starts++
				}
			}
			if items, _ := counts(is); items != starts {
				t.Fatalf("%d item headings, but %d items", starts, items)
			}
		}
		var md bytes.Buffer
		if err := compose.WriteMarkdown(&md, is); err != nil {
			t.Fatal(err)
		}
		back, err := compose.ParseMarkdown("f2.md", md.Bytes())
		if err != nil {
			t.Fatalf("written Markdown does not parse: %v\n%s", err, md.String())
		}
		sameIssue(t, is, back)
		// Written Markdown is the exchange format: writing what it reads
		// gives it back byte for byte.
		var again bytes.Buffer
		if err := compose.WriteMarkdown(&again, back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), md.Bytes()) {
			t.Fatalf("written twice differs:\n%s\n----\n%s", md.String(), again.String())
		}
	})
}
