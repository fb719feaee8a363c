package compose_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestImportSamplesCounts(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			is := mustImport(t, s.path)
			items, urls := counts(is)
			if items != s.items || urls != s.urls || len(is.Sections) != s.sections {
				t.Errorf("got %d sections, %d items, %d URLs; want %d, %d, %d", len(is.Sections), items, urls, s.sections, s.items, s.urls)
			}
			if is.Slug != s.name {
				t.Errorf("slug %q, want %q", is.Slug, s.name)
			}
			if is.Newsletter != "AI政策動向マンスリー情報" {
				t.Errorf("newsletter %q", is.Newsletter)
			}
			if len(is.Intro) != 2 || !strings.HasPrefix(is.Intro[0], "AIセーフティに関する内容") {
				t.Errorf("intro %q", is.Intro)
			}
		})
	}
}

// TestImportLossless checks that every URL and every text line of the
// source is somewhere in the issue, byte for byte and in order.
func TestImportLossless(t *testing.T) {
	urlRE := regexp.MustCompile(`^\s*(https?://\S+)( -)?\s*$`)
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			src := string(readFile(t, s.path))
			is := mustImport(t, s.path)
			var gotURLs, gotText []string
			gotText = append(gotText, is.Newsletter)
			gotText = append(gotText, is.Intro...)
			for _, sec := range is.Sections {
				if g := sec.Group + " " + sec.Note; sec.Group != "" && !slices.Contains(gotText, g) {
					gotText = append(gotText, g)
				}
				gotText = append(gotText, sec.Heading)
				for _, it := range sec.Items {
					gotText = append(gotText, it.Headline)
					gotText = append(gotText, it.Body...)
					gotURLs = append(gotURLs, it.Links...)
				}
			}
			all := strings.Join(gotText, "\n")
			var wantURLs []string
			for i, l := range strings.Split(src, "\n") {
				l = strings.TrimSpace(l)
				if m := urlRE.FindStringSubmatch(l); m != nil {
					wantURLs = append(wantURLs, m[1])
					continue
				}
				if l == "" || l == "-" {
					continue
				}
				if compose.IsItemStart(l) {
					l = l[strings.Index(l, ")")+1:]
				}
				if !strings.Contains(all, l) {
					t.Errorf("line %d lost: %q", i+1, l)
				}
			}
			if !slices.Equal(gotURLs, wantURLs) {
				t.Errorf("URLs differ:\n got %q\nwant %q", gotURLs, wantURLs)
			}
		})
	}
}

func TestImportSectionsJuly(t *testing.T) {
	is := mustImport(t, samples[0].path)
	type sec struct {
		group, title, period, note string
		region                     audience.Region
		kind                       audience.Topic
		items                      int
	}
	want := []sec{
		{"", "日本AISIの活動", "7月1日~7月31日", "", audience.JP, audience.Activities, 5},
		{"", "国内AI政策動向", "7月1日~7月31日", "", audience.JP, audience.Policy, 2},
		{"海外主要国のAI政策動向", "【米国】", "7月1日~7月31日", "※日時は現地時間", audience.US, audience.Policy, 1},
		{"海外主要国のAI政策動向", "【欧州】", "7月1日~7月31日", "※日時は現地時間", audience.EU, audience.Policy, 4},
		{"海外主要国のAI政策動向", "【アジア(中国、韓国、インド、シンガポール)】", "7月1日~7月31日", "※日時は現地時間", audience.Asia, audience.Policy, 4},
		{"", "国内の主要なAI関連レポート等", "7月1日~7月31日", "", audience.JP, audience.Reports, 3},
		{"", "海外の主要なAI関連レポート等", "7月1日~7月31日", "※日時は現地時間", audience.Intl, audience.Reports, 5},
	}
	if len(is.Sections) != len(want) {
		t.Fatalf("%d sections, want %d", len(is.Sections), len(want))
	}
	for i, w := range want {
		s := is.Sections[i]
		got := sec{s.Group, s.Title, s.Period, s.Note, s.Region, s.Kind, len(s.Items)}
		if got != w {
			t.Errorf("section %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	// Regions inferred in the international reports section.
	var regions []audience.Region
	for _, it := range is.Sections[6].Items {
		regions = append(regions, it.Region)
		if !slices.Equal(it.Topics, []audience.Topic{audience.Reports}) {
			t.Errorf("topics %v", it.Topics)
		}
	}
	wantRegions := []audience.Region{audience.Intl, audience.Intl, audience.US, audience.EU, audience.EU}
	if !slices.Equal(regions, wantRegions) {
		t.Errorf("intl regions %v, want %v", regions, wantRegions)
	}
	// An item ending with " -" and one ending with the next heading.
	first := is.Sections[0].Items[0]
	if first.Dates.Text != "2025/07/05" || first.Line != 6 || len(first.Body) != 1 || first.LinkLines[0] != 8 {
		t.Errorf("first item %+v", first)
	}
	if got := is.Sections[0].Items[4].Links; len(got) != 1 || got[0] != "https://llmc.nii.ac.jp/events/20250723/" {
		t.Errorf("last item of a section: links %q", got)
	}
	if is.Title != "AI政策動向マンスリー情報 2025年7月号" || is.Period != "7月1日~7月31日" {
		t.Errorf("title %q period %q", is.Title, is.Period)
	}
}

func TestImportNovember(t *testing.T) {
	is := mustImport(t, samples[1].path)
	it := is.Sections[1].Items[0]
	if it.Dates.Text != "2025/11/04、21" || len(it.Dates.Days) != 2 || it.Dates.Days[1].Day() != 21 {
		t.Errorf("dates %+v", it.Dates)
	}
	if it.Line != 30 || !slices.Equal(it.LinkLines, []int{32, 33}) {
		t.Errorf("lines %d %v", it.Line, it.LinkLines)
	}
	last := is.Sections[6].Items[0]
	if last.Region != audience.EU || len(last.Body) != 0 || len(last.Links) != 1 {
		t.Errorf("last item %+v", last)
	}
}

func TestImportOptions(t *testing.T) {
	is, err := compose.ImportText("x", readFile(t, samples[1].path), compose.ImportOptions{
		Newsletter: "便り", Slug: "nov", Preheader: "今月の動き",
	})
	if err != nil {
		t.Fatal(err)
	}
	if is.Newsletter != "便り" || is.Slug != "nov" || is.Title != "便り nov" || is.Preheader != "今月の動き" {
		t.Errorf("got %q %q %q %q", is.Newsletter, is.Slug, is.Title, is.Preheader)
	}
}

// TestImportTolerance feeds variants of a small issue that must all give
// the same result.
func TestImportTolerance(t *testing.T) {
	base := "便りテスト\n日本AISIの活動(11月1日~11月30日)\n-\n(2025/11/12)見出し\n本文。\nhttps://example.jp/a -\n(2025/11/13)二つ目\nhttps://example.jp/b\n【米国】(11月1日～11月30日)\n該当なし\n海外の主要なAI関連レポート等(11月1日〜11月30日)\n  1. (2025/09/30~10/02)英国、報告書\n    https://example.uk/r\n"
	want, err := compose.ImportText("base", []byte(base), compose.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if items, urls := counts(want); items != 3 || urls != 3 || len(want.Sections) != 3 || len(want.Sections[1].Items) != 0 {
		t.Fatalf("base: %d items %d urls %+v", items, urls, want.Sections)
	}
	if r := want.Sections[2].Items[0].Region; r != audience.EU {
		t.Errorf("region %q", r)
	}
	// The full-width tilde and the wave dash give the same period as "~"
	// (issue 22), so the sections share the issue's period.
	if p := want.Sections[1].Period; p != "11月1日~11月30日" {
		t.Errorf("period %q", p)
	}
	if want.Period != "11月1日~11月30日" {
		t.Errorf("issue period %q", want.Period)
	}
	variants := map[string]string{
		"bom":      "\ufeff" + base,
		"crlf":     strings.ReplaceAll(base, "\n", "\r\n"),
		"cr":       strings.ReplaceAll(base, "\n", "\r"),
		"trailing": strings.ReplaceAll(base, "\n", " \t　\n"),
		"blank":    strings.ReplaceAll(base, "\n-\n", "\n\n-\n\n"),
		"no-final": strings.TrimSuffix(base, "\n"),
		"blank-in": strings.ReplaceAll(base, "\n本文。\n", "\n\n本文。\n\n"),
	}
	for name, v := range variants {
		t.Run(name, func(t *testing.T) {
			got, err := compose.ImportText("base", []byte(v), compose.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sameIssue(t, want, got)
		})
	}
}

// TestImportItemsWithoutLinks checks the " -" end mark on a headline or
// body line of the dash-separated layout, and that numbered items keep it.
func TestImportItemsWithoutLinks(t *testing.T) {
	src := "国内の主要なAI関連レポート等\n-\n(2025/07/08)見出しだけ -\n(2025/07/09)本文あり\n本文 -\n国内AI政策動向\n  1. (2025/07/10)番号 -\n    本文 -\n"
	is, err := compose.ImportText("f", []byte(src), compose.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := is.Sections[0].Items
	if len(r) != 2 || r[0].Headline != "見出しだけ" || len(r[0].Body) != 0 || !slices.Equal(r[1].Body, []string{"本文"}) {
		t.Errorf("dash layout: %+v", r)
	}
	n := is.Sections[1].Items
	if len(n) != 1 || n[0].Headline != "番号 -" || !slices.Equal(n[0].Body, []string{"本文 -"}) {
		t.Errorf("numbered layout: %+v", n)
	}
}

func TestImportErrors(t *testing.T) {
	tests := []struct {
		name, src string
		sentinel  error
		want      []string // substrings, one per expected problem, in order
	}{
		{"unknown heading", "日本AISIの活動(11月1日~11月30日)\n(2025/11/12)見出し\nhttps://a.jp/ -\n謎の見出し(11月1日~11月30日)\n(2025/11/13)x\n国内AI政策動向\n(2025/13/01)悪い日付\n",
			compose.ErrSyntax, []string{`f:4: unknown section heading "謎の見出し(11月1日~11月30日)"`, `f:7: item: bad dates "2025/13/01"`}},
		{"no sections", "ただの文章。\n", compose.ErrSyntax, []string{"f: no section heading found"}},
		{"item before section", "(2025/11/12)見出し\n日本AISIの活動\n", compose.ErrSyntax, []string{"f:1: item before the first section"}},
		{"url outside item", "日本AISIの活動\n-\nhttps://a.jp/\n", compose.ErrSyntax, []string{`f:3: URL "https://a.jp/" outside an item`}},
		{"unindented body of a numbered item", "日本AISIの活動\n  1. (2025/11/12)見出し\n本文\n", compose.ErrSyntax, []string{`f:3: unknown section heading "本文"`}},
		{"no headline", "日本AISIの活動\n(2025/11/12)\n", compose.ErrSyntax, []string{"f:2: item has dates but no headline"}},
		{"invalid utf8", "日本AISIの活動\n(2025/11/12)見出し\xff\xfe\nok\n\x80\n", compose.ErrInvalidUTF8, []string{"f:2: invalid UTF-8 at byte 22", "f:4: invalid UTF-8 at byte 1"}},
		{"too large", "日本AISIの活動\n" + strings.Repeat("あ", compose.MaxInputSize/3+1), compose.ErrTooLarge, []string{"f: larger than 2097152 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compose.ImportText("f", []byte(tt.src), compose.ImportOptions{})
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("error %v, want %v", err, tt.sentinel)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestGoldenMarkdown(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			is := mustImport(t, s.path)
			var buf bytes.Buffer
			if err := compose.WriteMarkdown(&buf, is); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "aisi-monthly-"+s.name+".md")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			got := buf.Bytes()
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Fatalf("%s:%d differs:\n got %q\nwant %q", golden, i+1, gl[i], wl[i])
					}
				}
				t.Fatalf("%s: got %d lines, want %d", golden, len(gl), len(wl))
			}
		})
	}
}

// TestRoundTrip checks import → Markdown → parse gives the same issue, and
// that Markdown → Markdown is stable.
func TestRoundTrip(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			imported := mustImport(t, s.path)
			var md bytes.Buffer
			if err := compose.WriteMarkdown(&md, imported); err != nil {
				t.Fatal(err)
			}
			parsed, err := compose.Parse("issue.md", md.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			sameIssue(t, imported, parsed)
			var md2 bytes.Buffer
			if err := compose.WriteMarkdown(&md2, parsed); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(md.Bytes(), md2.Bytes()) {
				t.Error("writing the parsed Markdown again gives different bytes")
			}
			// Line numbers of the Markdown point at the items' headings.
			lines := strings.Split(md.String(), "\n")
			for _, sec := range parsed.Sections {
				for _, it := range sec.Items {
					if !strings.HasPrefix(lines[it.Line-1], "### ") {
						t.Errorf("item line %d is %q", it.Line, lines[it.Line-1])
					}
					for i, ln := range it.LinkLines {
						if lines[ln-1] != "- "+it.Links[i] {
							t.Errorf("link line %d is %q", ln, lines[ln-1])
						}
					}
				}
			}
		})
	}
}
