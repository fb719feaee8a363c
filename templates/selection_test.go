package templates_test

import (
	"errors"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/templates"
)

func prefs(rs []audience.Region, ts ...audience.Topic) audience.Prefs {
	return audience.Prefs{Regions: rs, Topics: ts}
}

func TestSelect(t *testing.T) {
	is := handIssue()
	r := newRenderer(t)
	all := audience.StandardTopics
	tests := []struct {
		name     string
		prefs    audience.Prefs
		items    int
		sections []string // section titles in the variant, in order
		err      error
	}{
		{"All", audience.All(), 8, []string{"日本AISIの活動", "国内AI政策動向", "【米国】", "【欧州】", "【アジア(中国、韓国、インド、シンガポール)】", "国内の主要なAI関連レポート等", "海外の主要なAI関連レポート等"}, nil},
		// Checklist 28: an EU reader gets no 米国 section; the
		// international report about the UK (item region eu) is included.
		{"EU", prefs([]audience.Region{audience.EU}, all...), 2, []string{"【欧州】", "海外の主要なAI関連レポート等"}, nil},
		{"JPPolicy", prefs([]audience.Region{audience.JP}, audience.Policy), 1, []string{"国内AI政策動向"}, nil},
		{"Reports", prefs(audience.Regions, audience.Reports), 2, []string{"国内の主要なAI関連レポート等", "海外の主要なAI関連レポート等"}, nil},
		{"CustomTag", prefs([]audience.Region{audience.JP}, "robotics"), 1, []string{"日本AISIの活動"}, nil},
		{"IntlRegionOnly", prefs([]audience.Region{audience.Intl}, all...), 0, nil, templates.ErrNothingToSend},
		{"NoTopics", prefs(audience.Regions), 0, nil, templates.ErrNothingToSend},
		{"NoRegions", prefs(nil, all...), 0, nil, templates.ErrNothingToSend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := templates.Select(is, tt.prefs)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if _, rerr := r.Render(is, sel); !errors.Is(rerr, templates.ErrNothingToSend) {
					t.Errorf("Render of an empty selection: %v, want ErrNothingToSend", rerr)
				}
				return
			}
			if sel.Len() != tt.items {
				t.Errorf("Len = %d, want %d", sel.Len(), tt.items)
			}
			got := render(t, r, is, tt.prefs)
			if got.v.Items != tt.items || got.v.Sections != len(tt.sections) {
				t.Errorf("variant has %d items in %d sections, want %d in %d", got.v.Items, got.v.Sections, tt.items, len(tt.sections))
			}
			doc := parseHTML(t, got.html)
			h2 := findAll(doc, "h2")
			if len(h2) != len(tt.sections) {
				t.Fatalf("%d h2, want %d", len(h2), len(tt.sections))
			}
			for i, h := range h2 {
				if textContent(h) != tt.sections[i] {
					t.Errorf("section %d is %q, want %q", i, textContent(h), tt.sections[i])
				}
			}
		})
	}
}

func TestSelectionKey(t *testing.T) {
	is := handIssue()
	key := func(p audience.Prefs) string {
		t.Helper()
		sel, err := templates.Select(is, p)
		if err != nil {
			t.Fatal(err)
		}
		return sel.Key()
	}
	// Different preferences, same items: same key. The hand issue has no
	// activities outside Japan, so adding us to a JP activities reader
	// changes nothing.
	a := key(prefs([]audience.Region{audience.JP}, audience.Activities))
	b := key(prefs([]audience.Region{audience.JP, audience.US}, audience.Activities))
	c := key(prefs([]audience.Region{audience.JP}, audience.Activities, "robotics"))
	if a != b || a != c {
		t.Errorf("same items, different keys: %q %q %q", a, b, c)
	}
	// Different items: different keys.
	seen := map[string]string{}
	for _, p := range []audience.Prefs{
		audience.All(),
		prefs([]audience.Region{audience.JP}, audience.Activities),
		prefs([]audience.Region{audience.JP}, audience.Policy),
		prefs([]audience.Region{audience.EU}, audience.Policy),
		prefs([]audience.Region{audience.EU}, audience.Reports),
		prefs([]audience.Region{audience.US}, audience.StandardTopics...),
	} {
		k := key(p)
		if prev, ok := seen[k]; ok {
			t.Errorf("prefs %s and %s share key %q but select different items", prev, p.Key(), k)
		}
		seen[k] = p.Key()
	}
	if k := key(audience.All()); k != "all" {
		t.Errorf("full key %q, want all", k)
	}
}

func TestSelectSectionFallback(t *testing.T) {
	// An item without region or topics takes its section's.
	is := &compose.Issue{Slug: "x", Title: "題", Sections: []compose.Section{{
		Title: "国内", Region: audience.JP, Kind: audience.Policy,
		Items: []compose.Item{{Headline: "見出し"}},
	}}}
	if _, err := templates.Select(is, prefs([]audience.Region{audience.JP}, audience.Policy)); err != nil {
		t.Errorf("section fallback: %v", err)
	}
	if _, err := templates.Select(is, prefs([]audience.Region{audience.US}, audience.Policy)); !errors.Is(err, templates.ErrNothingToSend) {
		t.Errorf("other region: %v", err)
	}
}

func TestRenderRejectsForeignSelection(t *testing.T) {
	r := newRenderer(t)
	sel, err := templates.SelectAll(handIssue())
	if err != nil {
		t.Fatal(err)
	}
	other := handIssue()
	other.Sections = other.Sections[:2]
	if _, err := r.Render(other, sel); !errors.Is(err, templates.ErrInvalidSelection) {
		t.Errorf("got %v, want ErrInvalidSelection", err)
	}
}
