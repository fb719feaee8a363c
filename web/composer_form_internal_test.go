package web

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/compose"
)

// fixtures are every sample and fixture issue of the repository: the two
// plain-text monthlies, the editor's Markdown of both, and the example of
// docs/issue-format.md.
func fixtures(t testing.TB) map[string]*compose.Issue {
	t.Helper()
	out := map[string]*compose.Issue{}
	for _, p := range []string{"../testdata/aisi-monthly-2025-07.txt", "../testdata/aisi-monthly-2025-11.txt",
		"../compose/testdata/aisi-monthly-2025-07.md", "../compose/testdata/aisi-monthly-2025-11.md"} {
		is, err := compose.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = is
	}
	doc, err := os.ReadFile("../docs/issue-format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "```markdown\n")
	example, _, _ := strings.Cut(rest, "```")
	is, err := compose.ParseMarkdown("issue-format.md", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	out["issue-format.md"] = is
	return out
}

// An issue loaded into the form and posted back unchanged is the same
// Markdown, byte for byte: opening the composer never makes a revision.
func TestDraftRoundTrip(t *testing.T) {
	for name, is := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			var want bytes.Buffer
			if err := compose.WriteMarkdown(&want, is); err != nil {
				t.Fatal(err)
			}
			d := parseDraft(is.Slug, draftOf(is, 3).values())
			if d.Base != 3 {
				t.Errorf("base %d", d.Base)
			}
			c, err := d.check()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.Markdown, want.Bytes()) {
				t.Fatalf("form Markdown differs:\n%s", firstDiff(c.Markdown, want.Bytes()))
			}
			if c.Issue == nil {
				t.Fatalf("does not parse: %v", c.Problems)
			}
			for _, p := range c.Problems {
				if p.Field == "" || (p.Line > 0 && !strings.HasPrefix(p.Text, is.Slug+".md:")) {
					t.Errorf("problem not placed at a field: %+v", p)
				}
			}
		})
	}
}

func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return "line " + itoa(i+1) + ":\n  got  " + la[i] + "\n  want " + lb[i]
		}
	}
	return "lengths " + itoa(len(la)) + " and " + itoa(len(lb))
}

func itoa(n int) string { return strconv.Itoa(n) }

// Problems of the lint and the parse land on the field they are about.
func TestDraftProblemFields(t *testing.T) {
	d := &draft{Slug: "2025-11", Newsletter: "便り", Title: "", Sections: []draftSection{
		{Heading: "国内AI政策動向(11月1日~11月30日)", Region: "jp", Kind: "policy", Items: []draftItem{
			{Dates: "2025/11/04", Headline: "見出し", Links: []draftLink{{}, {URL: "ftp://a.jp/x"}}},
			{Dates: "2025/13/45", Headline: "日付が変"},
		}},
		{Heading: "謎", Region: "jp", Kind: "news", Items: []draftItem{{Headline: ""}}},
	}}
	c, err := d.check()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range c.Problems {
		got[p.Field] = p.Message
	}
	for field, want := range map[string]string{
		"s0.i1.dates": "bad dates",
		"s1.kind":     "unknown kind",
	} {
		if !strings.Contains(got[field], want) {
			t.Errorf("%s: %q, want %q (all: %v)", field, got[field], want, got)
		}
	}
	if c.Issue != nil {
		t.Error("a draft with parse errors parsed")
	}
	// Once it parses, the lint's problems: the title, a link.
	d.Sections = d.Sections[:1]
	d.Sections[0].Items = d.Sections[0].Items[:1]
	if c, err = d.check(); err != nil || c.Issue == nil {
		t.Fatalf("check: %v %v", err, c.Problems)
	}
	got = map[string]string{}
	for _, p := range c.Problems {
		got[p.Field] = p.Message
	}
	if !strings.Contains(got["title"], "no title") || !strings.Contains(got["s0.i0.l1.url"], "not http or https") {
		t.Errorf("lint fields: %v", got)
	}
}

func TestDraftApply(t *testing.T) {
	mk := func() *draft {
		return &draft{Sections: []draftSection{
			{Heading: "A", Items: []draftItem{{Headline: "a1"}, {Headline: "a2"}}},
			{Heading: "B", Items: []draftItem{{Headline: "b1"}}},
		}}
	}
	heads := func(d *draft) string {
		var b strings.Builder
		for _, s := range d.Sections {
			b.WriteString(s.Heading + ":")
			for _, it := range s.Items {
				b.WriteString(it.Headline + ",")
			}
			b.WriteString(" ")
		}
		return b.String()
	}
	for _, tc := range []struct{ op, want string }{
		{"up:s0.i1", "A:a2,a1, B:b1, "},
		{"down:s0.i1", "A:a1, B:a2,b1, "},
		{"up:s1.i0", "A:a1,a2,b1, B: "},
		{"down:s0", "B:b1, A:a1,a2, "},
		{"up:s0", "A:a1,a2, B:b1, "},
		{"del:s0.i0", "A:a2, B:b1, "},
		{"del:s1", "A:a1,a2, "},
		{"add-item:s1", "A:a1,a2, B:b1,, "},
		{"add-section", "A:a1,a2, B:b1, :, "},
		{"del:s9", "A:a1,a2, B:b1, "},
		{"bogus", "A:a1,a2, B:b1, "},
	} {
		d := mk()
		d.apply(tc.op)
		if got := heads(d); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.op, got, tc.want)
		}
	}
}

func TestDiffAndMerge(t *testing.T) {
	base := []string{"t: 題", "a", "b", "c", "d"}
	theirs := []string{"t: 相手の題", "a", "b", "c", "d"}
	mine := []string{"t: 題", "a", "b2", "c", "d", "e"}
	mp := planMerge(base, theirs, mine)
	if len(mp.Hunks) != 3 {
		t.Fatalf("hunks %+v", mp.Hunks)
	}
	if h := mp.Hunks[0]; !h.ByThem || h.ByMe || h.TakeMine() {
		t.Errorf("their title: %+v", h)
	}
	if h := mp.Hunks[1]; h.ByThem || !h.ByMe || !h.TakeMine() {
		t.Errorf("my b2: %+v", h)
	}
	take := make([]bool, len(mp.Hunks))
	for i, h := range mp.Hunks {
		take[i] = h.TakeMine()
	}
	if got := string(mp.merge(take)); got != "t: 相手の題\na\nb2\nc\nd\ne\n" {
		t.Errorf("merged %q", got)
	}
	// Both changed the same line: flagged.
	both := planMerge(base, []string{"t: X", "a", "b", "c", "d"}, []string{"t: Y", "a", "b", "c", "d"})
	if len(both.Hunks) != 1 || !both.Hunks[0].Both() {
		t.Errorf("both: %+v", both.Hunks)
	}
	rows := diffRows([]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, []string{"1", "2", "3", "4", "5", "X", "7", "8", "9", "10"}, 1)
	var ops string
	for _, r := range rows {
		ops += r.Op
	}
	if ops != "… -+ …" {
		t.Errorf("diff rows %q", ops)
	}
}
