package compose_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// nothingIssue is the November sample with its US and EU sections marked
// as having nothing this month, as the editor writes it.
func nothingIssue(tb testing.TB) []byte {
	tb.Helper()
	src := string(readFile(tb, samples[1].path))
	lines := strings.Split(src, "\n")
	var out []string
	skip := false
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "【米国】") || strings.HasPrefix(t, "【欧州】") {
			out = append(out, l, "該当なし")
			skip = true
			continue
		}
		if skip && (strings.HasPrefix(t, "【") || strings.HasPrefix(t, "国内の主要") || strings.HasPrefix(t, "海外の主要")) {
			skip = false
		}
		if !skip {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// Issue 22: a region marked "該当なし" keeps the mark through the importer
// and the editor's format, and the lint does not call it a mistake.
func TestNothingThisMonthKept(t *testing.T) {
	is, err := compose.ImportText("n.txt", nothingIssue(t), compose.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	marked := map[audience.Region]string{}
	for _, s := range is.Sections {
		if s.Nothing != "" {
			if len(s.Items) != 0 {
				t.Errorf("section %q: marked and %d items", s.Title, len(s.Items))
			}
			marked[s.Region] = s.Nothing
		}
	}
	if len(marked) != 2 || marked[audience.US] != "該当なし" || marked[audience.EU] != "該当なし" {
		t.Fatalf("marked sections %v", marked)
	}
	var md bytes.Buffer
	if err := compose.WriteMarkdown(&md, is); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "【米国】(11月1日~11月30日) {region=us kind=policy group=\"海外主要国のAI政策動向 ※日時は現地時間\"}\n\n該当なし\n") {
		t.Errorf("Markdown lacks the mark:\n%s", md.String())
	}
	back, err := compose.ParseMarkdown("n.md", md.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sameIssue(t, is, back)
	for _, p := range compose.Check(back) {
		if strings.Contains(p.String(), "no items") {
			t.Errorf("lint: %v", p)
		}
	}
}
