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
