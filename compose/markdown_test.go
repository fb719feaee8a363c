package compose_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

const mdSrc = "\ufeff---\r\n" + `newsletter: 便り
slug: "2025-11"
title: 便り 2025年11月号
preheader: 今月のAI政策
region_rules:
  - match: 台湾
    region: asia
---

はじめの段落は
二行に折り返しても一つの段落。

English lines are
joined with a space.

<!-- 編集メモ:
送信前に確認 -->

## 海外の主要なAI関連レポート等(11月1日~11月30日) ※日時は現地時間 {region=intl kind=reports}

### (2025/11/25) 台湾、報告書を公表

\- で始まる本文
\## も本文

- <https://example.tw/r>
* https://example.tw/s

### (2025/11/26) 英国、報告書 {region=us topics=safety,policy,safety}

### () (仮題)未定 {}

### 見出し {x} {}

## 【米国】(11月1日~11月30日) {region=us kind=policy group="海外主要国のAI政策動向 ※日時は現地時間"}

### (2025/11/13~14) 会合

該当なし
`

func TestParseMarkdown(t *testing.T) {
	is, err := compose.Parse("m.md", []byte(mdSrc))
	if err != nil {
		t.Fatal(err)
	}
	if is.Newsletter != "便り" || is.Slug != "2025-11" || is.Preheader != "今月のAI政策" {
		t.Errorf("front matter %+v", is)
	}
	if len(is.RegionRules) != 1 || is.RegionRules[0].Line != 7 || is.RegionRules[0].Region != audience.Asia {
		t.Errorf("rules %+v", is.RegionRules)
	}
	wantIntro := []string{"はじめの段落は二行に折り返しても一つの段落。", "English lines are joined with a space."}
	if !slices.Equal(is.Intro, wantIntro) {
		t.Errorf("intro %q", is.Intro)
	}
	s := is.Sections[0]
	if s.Title != "海外の主要なAI関連レポート等" || s.Note != "※日時は現地時間" || s.Line != 20 {
		t.Errorf("section %+v", s)
	}
	it := s.Items[0]
	if it.Region != audience.Asia || it.Headline != "台湾、報告書を公表" || it.Line != 22 {
		t.Errorf("rule from front matter: %+v", it)
	}
	if !slices.Equal(it.Body, []string{"- で始まる本文## も本文"}) {
		t.Errorf("escaped body %q", it.Body)
	}
	if !slices.Equal(it.Links, []string{"https://example.tw/r", "https://example.tw/s"}) || !slices.Equal(it.LinkLines, []int{27, 28}) {
		t.Errorf("links %q %v", it.Links, it.LinkLines)
	}
	ov := s.Items[1]
	if ov.Region != audience.US || !slices.Equal(ov.Topics, []audience.Topic{audience.Reports, audience.Policy, "safety"}) {
		t.Errorf("override: %q %q", ov.Region, ov.Topics)
	}
	if h := s.Items[2]; h.Headline != "(仮題)未定" || !h.Dates.IsZero() {
		t.Errorf("empty dates: %+v", h)
	}
	if h := s.Items[3].Headline; h != "見出し {x}" {
		t.Errorf("braces kept: %q", h)
	}
	us := is.Sections[1]
	if us.Group != "海外主要国のAI政策動向" || us.Note != "※日時は現地時間" || us.Region != audience.US {
		t.Errorf("group: %+v", us)
	}
	if d := us.Items[0].Dates; d.From.Day() != 13 || d.To.Day() != 14 {
		t.Errorf("range %+v", d)
	}
	// Writing and reading again keeps everything.
	var buf bytes.Buffer
	if err := compose.WriteMarkdown(&buf, is); err != nil {
		t.Fatal(err)
	}
	again, err := compose.ParseMarkdown("again.md", buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	sameIssue(t, is, again)
}

func TestParseMarkdownErrors(t *testing.T) {
	src := `---
slug: 2025-11
colour: red
region_rules:
  - match: 台湾
    region: tw
  - region: asia
---

本文

# 大見出し

## 謎の節

### (2025/11/01) 節のない項目

## 国内AI政策動向 {region=jp kind=news}

## 日本AISIの活動 {region=jp}

節の前の文章

- https://example.jp/x

### (2025/11/31) 日付が変

### (2025/11/01) 地域が変 {region=mars}

### (2025/11/01) 属性が変 {colour=red}

### (2025/11/01) 話題が変 {topics=Bad_Tag}

### (2025/11/01) 壊れた属性 {region="jp}

####### 深すぎる

##見出し

<!-- 閉じない
`
	_, err := compose.ParseMarkdown("e.md", []byte(src))
	var list compose.Errors
	if !errors.As(err, &list) || !errors.Is(err, compose.ErrSyntax) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		"e.md:3: front matter: field colour not found",
		`e.md:5: region_rules: unknown region "tw"`,
		"e.md:7: region_rules: rule has no match",
		"e.md:12: level-1 heading",
		`e.md:14: unknown section heading "謎の節"`,
		`e.md:18: section "国内AI政策動向": unknown kind "news"`,
		`e.md:22: text between a section heading and its first item`,
		`e.md:24: link "https://example.jp/x" outside an item`,
		`e.md:26: item: bad dates "2025/11/31"`,
		`e.md:28: item: unknown region "mars"`,
		`e.md:30: unknown attribute "colour" (allowed here: region, topics)`,
		`e.md:32: item topics:`,
		`e.md:34: attributes: unclosed quote`,
		"e.md:36: level-7 heading",
		"e.md:38: heading marks need a space",
		`e.md:40: comment "<!--" is not closed`,
	}
	if len(list) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(list[i].Error(), w) {
			t.Errorf("problem %d:\n got %s\nwant %s…", i, list[i], w)
		}
	}
}

func TestParseMarkdownFrontMatter(t *testing.T) {
	for name, src := range map[string]string{
		"unclosed": "---\nslug: x\n",
		"yaml":     "---\nslug: [\n---\n",
		"empty":    "",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := compose.ParseMarkdown("f.md", []byte(src))
			if !errors.Is(err, compose.ErrSyntax) || !strings.HasPrefix(err.Error(), "f.md:") {
				t.Errorf("error %v", err)
			}
		})
	}
}

func TestIsMarkdown(t *testing.T) {
	for src, want := range map[string]bool{
		"---\n":         true,
		"\ufeff---\r\n": true,
		"--- \n":        true,
		"-\n---\n":      false,
		"日本AISIの活動\n":   false,
	} {
		if got := compose.IsMarkdown([]byte(src)); got != want {
			t.Errorf("IsMarkdown(%q) = %v", src, got)
		}
	}
}

// TestWriteMarkdownEscapes writes an issue full of text that looks like
// the format's own syntax and reads it back unchanged.
func TestWriteMarkdownEscapes(t *testing.T) {
	dates, _ := compose.ParseDates("2025/11/04、21")
	is := &compose.Issue{
		Newsletter: "- null", Slug: "#1", Title: `"引用" {x}: y`, Preheader: "---", Period: "null",
		Intro: []string{"# 見出しではない", "- 箇条書きではない", "<!-- コメントではない -->", `\ 逆斜線`, "---", "* 星", "+ 足"},
		Sections: []compose.Section{{
			Heading: "国内AI政策動向 {region=us}", Title: "国内AI政策動向 {region=us}", Region: audience.JP, Kind: audience.Policy,
			Group: `括弧 {a} と "引用" と \ 逆斜線`, Note: "",
			Items: []compose.Item{
				{Dates: dates, Headline: "見出し {region=us}", Body: []string{"### 本文", "-- 二重"}, Links: []string{"https://a.jp/?q={x}", "<https://a.jp/>", "- x"},
					Region: audience.JP, Topics: []audience.Topic{audience.Policy}},
				{Headline: "(括弧で始まる)見出し", Region: audience.US, Topics: []audience.Topic{audience.Policy, "a-b"}},
			},
		}},
	}
	var buf bytes.Buffer
	if err := compose.WriteMarkdown(&buf, is); err != nil {
		t.Fatal(err)
	}
	back, err := compose.ParseMarkdown("e.md", buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	sameIssue(t, is, back)
}

// Link labels and the closing: "- [label](url)" and the paragraphs after
// a "---" line that ends the sections, written back byte for byte.
func TestMarkdownLabelsAndClosing(t *testing.T) {
	src := `---
newsletter: 便り
slug: 2025-12
title: 便り 2025年12月号
# region_rules:        # regions of items in intl sections, by a name in the headline
#   - {match: 台湾, region: asia}
---

はじめに。

## 国内AI政策動向 {region=jp kind=policy}

### (2025/12/01) 総務省、会合を開催

- [総務省の発表 \] 資料](https://www.soumu.go.jp/a)
- https://www.soumu.go.jp/b
- <[not](a label)>

---

今月もお読みいただきありがとうございました。

\- 記号で始まる結び
`
	is, err := compose.ParseMarkdown("c.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	it := is.Sections[0].Items[0]
	if !slices.Equal(it.Links, []string{"https://www.soumu.go.jp/a", "https://www.soumu.go.jp/b", "[not](a label)"}) ||
		!slices.Equal(it.LinkLabels, []string{"総務省の発表 ] 資料", "", ""}) {
		t.Errorf("links %q labels %q", it.Links, it.LinkLabels)
	}
	if !slices.Equal(is.Closing, []string{"今月もお読みいただきありがとうございました。", "- 記号で始まる結び"}) {
		t.Errorf("closing %q", is.Closing)
	}
	if is.Sections[0].Items[0].Body != nil {
		t.Errorf("the closing went into the item: %q", is.Sections[0].Items[0].Body)
	}
	var buf bytes.Buffer
	if err := compose.WriteMarkdown(&buf, is); err != nil {
		t.Fatal(err)
	}
	if buf.String() != src {
		t.Errorf("written back:\n%s\nwant:\n%s", buf.String(), src)
	}
	for _, tc := range []struct{ src, want string }{
		{"---\n---\n## 国内AI政策動向\n### (2025/12/01) a\n---\n\n## 【米国】\n", `c.md:7: heading after the closing`},
		{"---\n---\n---\n\n- https://a.jp/\n", `c.md:5: link in the closing`},
	} {
		_, err := compose.ParseMarkdown("c.md", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestParagraphs(t *testing.T) {
	got := compose.Paragraphs("一行目\r\n二行目\n\n\n  English\nwords \n\r\n三つ目\r")
	want := []string{"一行目二行目", "English words", "三つ目"}
	if !slices.Equal(got, want) {
		t.Errorf("Paragraphs: %q, want %q", got, want)
	}
	if got := compose.Paragraphs(" \n \n"); got != nil {
		t.Errorf("blank: %q", got)
	}
}
