package compose_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/compose"
)

// samples are the two plain-text issues in the repository's testdata.
var samples = []struct {
	name        string
	path        string
	items, urls int
	sections    int
}{
	{"2025-07", "../testdata/aisi-monthly-2025-07.txt", 24, 34, 7},
	{"2025-11", "../testdata/aisi-monthly-2025-11.txt", 17, 19, 7},
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func mustImport(tb testing.TB, path string) *compose.Issue {
	tb.Helper()
	is, err := compose.ImportText(path, readFile(tb, path), compose.ImportOptions{})
	if err != nil {
		tb.Fatalf("ImportText(%s): %v", path, err)
	}
	return is
}

func counts(is *compose.Issue) (items, urls int) {
	for _, s := range is.Sections {
		items += len(s.Items)
		for _, it := range s.Items {
			urls += len(it.Links)
		}
	}
	return items, urls
}

// stripLines returns a copy of is without source positions, for comparing
// issues read from different sources.
func stripLines(is *compose.Issue) *compose.Issue {
	c := *is
	c.Source = ""
	c.RegionRules = nil
	for _, r := range is.RegionRules {
		r.Line = 0
		c.RegionRules = append(c.RegionRules, r)
	}
	c.Sections = make([]compose.Section, len(is.Sections))
	for i, s := range is.Sections {
		s.Line = 0
		items := make([]compose.Item, len(s.Items))
		for j, it := range s.Items {
			it.Line = 0
			it.LinkLines = nil
			items[j] = it
		}
		s.Items = items
		c.Sections[i] = s
	}
	return &c
}

// sameIssue fails the test if a and b differ other than in source
// positions, showing the first differing line of their JSON.
func sameIssue(tb testing.TB, a, b *compose.Issue) {
	tb.Helper()
	a, b = stripLines(a), stripLines(b)
	if reflect.DeepEqual(a, b) {
		return
	}
	ja, _ := json.MarshalIndent(a, "", " ")
	jb, _ := json.MarshalIndent(b, "", " ")
	la, lb := strings.Split(string(ja), "\n"), strings.Split(string(jb), "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			tb.Fatalf("issues differ at JSON line %d:\n  %s\n  %s", i+1, la[i], lb[i])
		}
	}
	tb.Fatalf("issues differ (JSON lengths %d and %d lines; or nil vs empty slices)", len(la), len(lb))
}
