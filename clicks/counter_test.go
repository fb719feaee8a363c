package clicks_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
)

// lists is the per-list setting, as a map.
type lists map[string]bool

func (l lists) ListCountsClicks(_ context.Context, list string) (bool, error) { return l[list], nil }

func testIssue() *compose.Issue {
	return &compose.Issue{Slug: "2026-01", Title: "1月号", Sections: []compose.Section{
		{Heading: "【日本】", Title: "【日本】", Region: audience.JP, Kind: audience.Policy, Items: []compose.Item{
			{Headline: "指針の公表", Links: []string{"https://www.soumu.go.jp/a.html", "https://www.meti.go.jp/b.pdf"}},
			{Headline: "リンクなし"},
		}},
		{Heading: "【米国】", Title: "【米国】", Region: audience.US, Kind: audience.Policy, Items: []compose.Item{
			{Headline: "大統領令", Links: []string{"mailto:someone@example.gov", "https://www.whitehouse.gov/x/"}},
		}},
	}}
}

// TestCounterOnEngines runs the counter on the real store of each
// engine: links recorded once per send, counted by one UPDATE each, the
// day kept, and unknown or forged tokens refused.
func TestCounterOnEngines(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			ctx := context.Background()
			db := testutil.OpenStore(t, eng)
			ledger := store.Ledger(db)
			t.Cleanup(func() { ledger.Close() })
			created, err := ledger.CreateSend(ctx, queue.SendRecord{UID: "u1", Slug: "2026-01", List: "monthly",
				IssueJSON: []byte(`{}`), ScheduledAt: 1, Now: 1}, func([]queue.EarlierSend) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			send := created.ID
			day := time.Date(2026, 1, 15, 23, 30, 0, 0, time.FixedZone("JST", 9*3600))
			c, err := clicks.New(store.Clicks(db), lists{"monthly": true}, newSigner(t, k1),
				clicks.Config{BaseURL: "https://news.example.jp/", Now: func() time.Time { return day }})
			if err != nil {
				t.Fatal(err)
			}
			is := testIssue()
			if on, err := c.Prepare(ctx, send, "other", is); err != nil || on {
				t.Fatalf("Prepare for a list that does not count: %v, %v", on, err)
			}
			for range 2 { // a second Prepare changes nothing
				if on, err := c.Prepare(ctx, send, "monthly", is); err != nil || !on {
					t.Fatalf("Prepare: %v, %v", on, err)
				}
			}
			links, err := c.SendLinks(ctx, send)
			if err != nil {
				t.Fatal(err)
			}
			want := []struct {
				section, item, link int
				url                 string
			}{{0, 0, 0, "https://www.soumu.go.jp/a.html"}, {0, 0, 1, "https://www.meti.go.jp/b.pdf"}, {1, 2, 1, "https://www.whitehouse.gov/x/"}}
			if len(links) != len(want) {
				t.Fatalf("links %+v, want %d", links, len(want))
			}
			for i, w := range want {
				l := links[i]
				if l.Seq != int64(i) || l.Section != w.section || l.Item != w.item || l.Link != w.link || l.URL != w.url || l.Clicks != 0 {
					t.Errorf("link %d = %+v, want %+v", i, l, w)
				}
			}
			if links[2].SectionTitle != "【米国】" || links[2].Headline != "大統領令" {
				t.Errorf("link 2 is under %q / %q", links[2].SectionTitle, links[2].Headline)
			}
			urls, err := c.LinkURLs(ctx, send)
			if err != nil || urls == nil {
				t.Fatalf("LinkURLs: %v", err)
			}
			u := urls(2, 1)
			if !strings.HasPrefix(u, "https://news.example.jp/c/") || urls(2, 0) != "" || urls(0, 0) == u {
				t.Errorf("LinkURLs: %q, %q", u, urls(2, 0))
			}
			tok := strings.TrimPrefix(u, "https://news.example.jp/c/")
			for range 3 {
				got, err := c.Click(ctx, tok)
				if err != nil || got != "https://www.whitehouse.gov/x/" {
					t.Fatalf("Click = %q, %v", got, err)
				}
			}
			links, _ = c.SendLinks(ctx, send)
			if l := links[2]; l.Clicks != 3 || l.FirstDay != "2026-01-15" || l.LastDay != "2026-01-15" {
				t.Errorf("after 3 clicks: %+v (the day is UTC)", l)
			}
			if links[0].Clicks != 0 || links[0].FirstDay != "" {
				t.Errorf("an unclicked link: %+v", links[0])
			}
			if _, err := c.Click(ctx, strings.TrimPrefix(c.URL(clicks.Ref{SendID: send, Seq: 99}), "https://news.example.jp/c/")); !errors.Is(err, clicks.ErrNotFound) {
				t.Errorf("unknown link: %v", err)
			}
			if _, err := c.Click(ctx, newSigner(t, k2).Mint(clicks.Ref{SendID: send, Seq: 0})); !errors.Is(err, clicks.ErrBadToken) {
				t.Errorf("foreign key: %v", err)
			}
			if f, err := c.LinkURLs(ctx, send+1); err != nil || f != nil {
				t.Errorf("LinkURLs of a send without counting: %v", err)
			}
		})
	}
}
