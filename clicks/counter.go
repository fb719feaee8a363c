package clicks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tayori-news/tayori/compose"
)

// Link is one counted link of a send: where it is in the issue, where it
// goes and how often it was followed. It names no reader.
type Link struct {
	SendID       int64
	Seq          int64 // the link's number in the send, from 0 (in its token)
	List         string
	Section      int // index of the section in the issue
	SectionTitle string
	Item         int // index of the item in the issue, counting through the sections
	Link         int // index of the link in the item
	Headline     string
	URL          string
	Clicks       int64
	FirstDay     string // UTC day of the first counted click, "2026-12-07"; "" none
	LastDay      string
}

// Store is the aggregate counts' storage (internal/store/sqlite and
// internal/store/postgres implement it).
type Store interface {
	// AddLinks records the links of one send with a count of zero; links
	// already recorded (same send and Seq) are left as they are.
	AddLinks(ctx context.Context, links []Link) error
	// Links returns a send's links in Seq order (none: not counted).
	Links(ctx context.Context, sendID int64) ([]Link, error)
	// Click adds one to the count of link r, sets its last day (and its
	// first, if none) to day, and returns its URL; ErrNotFound if there is
	// no such link.
	Click(ctx context.Context, r Ref, day string) (url string, err error)
}

// Lists reads the per-list setting (*subscribers.Store implements it).
type Lists interface {
	// ListCountsClicks reports whether the list counts clicks (false, the
	// default, for a list never set).
	ListCountsClicks(ctx context.Context, list string) (bool, error)
}

// Config configures a Counter.
type Config struct {
	// BaseURL is the public web address, e.g. "https://news.example.jp":
	// links become BaseURL + "/c/" + token. Required.
	BaseURL string
	// Now is the clock (the day of a click). Nil: time.Now.
	Now func() time.Time
}

// Counter records the links of the sends of lists that count clicks,
// rewrites them, and counts the clicks. It is safe for concurrent use.
type Counter struct {
	store  Store
	lists  Lists
	signer *Signer
	base   string
	now    func() time.Time
}

// New returns a Counter.
func New(store Store, lists Lists, signer *Signer, cfg Config) (*Counter, error) {
	if store == nil || lists == nil || signer == nil {
		return nil, errors.New("clicks: a Counter needs a Store, Lists and a Signer")
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://") {
		return nil, fmt.Errorf("clicks: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Counter{store: store, lists: lists, signer: signer, base: base, now: cfg.Now}, nil
}

// IssueLinks returns the countable links of issue for a send: every
// http(s) link of every item, in order, numbered from 0.
func IssueLinks(sendID int64, list string, issue *compose.Issue) []Link {
	var out []Link
	item := 0
	for si := range issue.Sections {
		sec := &issue.Sections[si]
		title := sec.Title
		if title == "" {
			title = sec.Heading
		}
		for ii := range sec.Items {
			it := &sec.Items[ii]
			for li, u := range it.Links {
				if !isHTTPURL(u) {
					continue
				}
				out = append(out, Link{SendID: sendID, Seq: int64(len(out)), List: list, Section: si, SectionTitle: title,
					Item: item, Link: li, Headline: it.Headline, URL: u})
			}
			item++
		}
	}
	return out
}

func isHTTPURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// Prepare is called when a send of issue to list is created: if the list
// counts clicks, it records the send's links and reports true. Copies of
// a send without recorded links are not rewritten, so the choice is made
// once per send, whatever happens to the setting during the send.
func (c *Counter) Prepare(ctx context.Context, sendID int64, list string, issue *compose.Issue) (bool, error) {
	on, err := c.lists.ListCountsClicks(ctx, list)
	if err != nil {
		return false, fmt.Errorf("clicks: setting of list %q: %w", list, err)
	}
	if !on {
		return false, nil
	}
	links := IssueLinks(sendID, list, issue)
	if len(links) == 0 {
		return false, nil
	}
	if err := c.store.AddLinks(ctx, links); err != nil {
		return false, fmt.Errorf("clicks: links of send %d: %w", sendID, err)
	}
	return true, nil
}

// LinkURLs returns, for a send whose links are recorded, the address of
// each counted link by its item and link index (see [Link]); nil when the
// send does not count clicks. The addresses are the same for every
// reader.
func (c *Counter) LinkURLs(ctx context.Context, sendID int64) (func(item, link int) string, error) {
	links, err := c.store.Links(ctx, sendID)
	if err != nil {
		return nil, fmt.Errorf("clicks: links of send %d: %w", sendID, err)
	}
	if len(links) == 0 {
		return nil, nil
	}
	m := make(map[[2]int]string, len(links))
	for _, l := range links {
		m[[2]int{l.Item, l.Link}] = c.URL(Ref{SendID: sendID, Seq: l.Seq})
	}
	return func(item, link int) string { return m[[2]int{item, link}] }, nil
}

// URL returns the redirect address of r.
func (c *Counter) URL(r Ref) string { return c.base + "/c/" + c.signer.Mint(r) }

// Click verifies tok, counts one click on its link and returns the URL to
// redirect to: ErrBadToken for a token the keyring did not sign,
// ErrNotFound for a link not recorded.
func (c *Counter) Click(ctx context.Context, tok string) (string, error) {
	r, err := c.signer.Parse(tok)
	if err != nil {
		return "", err
	}
	u, err := c.store.Click(ctx, r, c.now().UTC().Format(time.DateOnly))
	if err != nil {
		return "", err
	}
	if !isHTTPURL(u) { // recorded links are http(s); never redirect elsewhere
		return "", ErrNotFound
	}
	return u, nil
}

// SendLinks returns a send's counted links with their counts, in order
// (none: the send did not count clicks).
func (c *Counter) SendLinks(ctx context.Context, sendID int64) ([]Link, error) {
	return c.store.Links(ctx, sendID)
}
