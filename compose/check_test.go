package compose_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"

	"github.com/tayori-news/tayori/compose"
)

func TestCheckSamples(t *testing.T) {
	july := compose.Check(mustImport(t, samples[0].path))
	if len(july) != 0 {
		t.Errorf("July: %v", july)
	}
	nov := compose.Check(mustImport(t, samples[1].path))
	if len(nov) != 2 {
		t.Fatalf("November: %d problems, want the two ®= URLs: %v", len(nov), nov)
	}
	for i, ln := range []int{70, 74} {
		p := nov[i]
		if p.Line != ln || p.Severity != compose.SeverityError || !strings.Contains(p.Message, "&reg=") ||
			!strings.Contains(p.Message, "PRID=") || !strings.Contains(p.Message, "&reg=3&lang=2") {
			t.Errorf("problem %d = %v", i, p)
		}
		if !strings.HasPrefix(p.String(), "../testdata/aisi-monthly-2025-11.txt:"+strconv.Itoa(ln)+": error: ") {
			t.Errorf("String() = %q", p.String())
		}
	}
	if !compose.HasErrors(nov) || compose.HasErrors(july) {
		t.Error("HasErrors")
	}
}

const checkSrc = `---
newsletter: テスト
slug: 2026-01
title: テスト 2026年1月号
---

## 日本AISIの活動(12月1日~12月31日) {region=jp kind=activities}

### (2025/12/05) 期間内

- https://example.jp/a

### (2025/11/30) 期間外

- ftp://example.jp/b
- https://example.jp/c d
- https://example.jp/a

### (2025/12/06) 三つ目

- https://例え.jp/
- http://localhost/

### (2025/12/07) 四つ目

## 国内AI政策動向(1月1日~1月31日) {region=jp kind=policy}

## 国内の主要なAI関連レポート等 {region=jp kind=reports}

### 日付なし

### (2026/01/10) 日付なし
`

func TestCheckProblems(t *testing.T) {
	is, err := compose.ParseMarkdown("c.md", []byte(checkSrc))
	if err != nil {
		t.Fatal(err)
	}
	is.Sections[0].Items[3].Region = ""
	want := []string{
		"c.md:13: warning: item dated 2025/11/30 is outside the section's period 12月1日~12月31日",
		`c.md:15: error: URL "ftp://example.jp/b" is not http or https`,
		`c.md:16: error: URL contains white space or a control character at byte 21`,
		"c.md:17: warning: duplicate URL: also at line 11: https://example.jp/a",
		`c.md:21: warning: URL "https://例え.jp/" has non-ASCII characters`,
		`c.md:22: error: URL "http://localhost/" has no valid host`,
		"c.md:24: error: item has no region",
		`c.md:26: warning: section "国内AI政策動向(1月1日~1月31日)" has no items`,
		"c.md:30: warning: item has no date",
		"c.md:32: error: duplicate item: same headline as the item at line 30",
	}
	got := compose.Check(is)
	if len(got) != len(want) {
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(s, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].String(), w) {
			t.Errorf("problem %d:\n got %s\nwant %s…", i, got[i], w)
		}
	}
	// The console shows each problem in Japanese: every one has its own
	// wording, in Japanese, naming what the English names.
	wantJA := []string{"セクションの期間 12月1日~12月31日 の外", "http か https", "21 バイト目", "11 行目",
		"パーセントエンコード", "ホスト名", "記事に地域がありません", "「国内AI政策動向(1月1日~1月31日)」に記事がありません",
		"日付がありません", "30 行目"}
	for i, w := range wantJA {
		if !strings.Contains(got[i].Japanese, w) {
			t.Errorf("problem %d in Japanese: %q, want it to contain %q", i, got[i].Japanese, w)
		}
	}
}

func TestCheckIssueLevel(t *testing.T) {
	got := compose.Check(&compose.Issue{Source: "x"})
	want := []string{
		"x: error: issue has no slug",
		"x: error: issue has no title",
		"x: warning: issue has no newsletter name",
		"x: error: issue has no sections",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].String(), w) {
			t.Errorf("got %s, want %s…", got[i], w)
		}
		if !strings.ContainsAny(got[i].Japanese, "号セクションニュースレター") {
			t.Errorf("problem %d has no Japanese wording: %q", i, got[i].Japanese)
		}
	}
}

func TestCheckMangledEntities(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://a.jp/?id=1®=3", `URL contains "®": its "&reg=" parameter was read as the HTML entity &reg; (®); write https://a.jp/?id=1&reg=3`},
		{"https://a.jp/?x=1®", `write https://a.jp/?x=1&reg`},
		{"https://a.jp/?id=1©=2", `its "&copy=" parameter was read as the HTML entity &copy; (©); write https://a.jp/?id=1&copy=2`},
		{"https://a.jp/?a=1¬=2&b=3", `write https://a.jp/?a=1&not=2&b=3`},
		{"https://a.jp/©", `has non-ASCII characters`},
	}
	for _, tt := range tests {
		is := &compose.Issue{Source: "e", Slug: "s", Title: "t", Newsletter: "n", Sections: []compose.Section{{
			Heading: "h", Region: "jp", Kind: "policy",
			Items: []compose.Item{{Headline: "x", Region: "jp", Topics: []audience.Topic{"policy"}, Dates: compose.Dates{Text: "d", Days: []time.Time{time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)}}, Links: []string{tt.url}, LinkLines: []int{7}}},
		}}}
		ps := compose.Check(is)
		if len(ps) != 1 || ps[0].Line != 7 || !strings.Contains(ps[0].Message, tt.want) {
			t.Errorf("%s: %v", tt.url, ps)
		}
	}
}
