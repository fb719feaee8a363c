package compose_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// TestDocExample parses the full example of docs/issue-format.md, so that
// the documentation cannot drift from the parser.
func TestDocExample(t *testing.T) {
	doc := string(readFile(t, "../docs/issue-format.md"))
	_, rest, ok := strings.Cut(doc, "```markdown\n")
	example, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("no ```markdown example in docs/issue-format.md")
	}
	is, err := compose.ParseMarkdown("issue-format.md", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if ps := compose.Check(is); len(ps) != 0 {
		t.Errorf("the example has problems: %v", ps)
	}
	if len(is.Sections) != 5 {
		t.Fatalf("%d sections", len(is.Sections))
	}
	intl := is.Sections[4].Items
	got := []audience.Region{intl[0].Region, intl[1].Region, intl[2].Region}
	if want := []audience.Region{audience.EU, audience.Asia, audience.EU}; !slices.Equal(got, want) {
		t.Errorf("intl regions %v, want %v", got, want)
	}
	if tp := is.Sections[1].Items[0].Topics; !slices.Equal(tp, []audience.Topic{audience.Policy, "security"}) {
		t.Errorf("topics %v", tp)
	}
	if b := is.Sections[0].Items[0].Body; len(b) != 1 || strings.Contains(b[0], " パネル") || strings.Contains(b[0], "の\n") {
		t.Errorf("wrapped paragraph %q", b)
	}
}
