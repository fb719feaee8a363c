package templates

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tayori-news/tayori/compose"
)

// ErrInvalidConfig is returned by [New] when the configuration lacks what
// every message must show.
var ErrInvalidConfig = errors.New("templates: invalid configuration")

// ErrInvalidIssue is returned by [Renderer.Render] for an issue that cannot
// be rendered: no slug or title, or text that contains the renderer's
// internal placeholder marker.
var ErrInvalidIssue = errors.New("templates: invalid issue")

// Config configures a [Renderer]. SenderName, PostalAddress and Contact are
// the sender's details that Japan's 特定電子メール法 Art. 4 requires in every
// message; they are shown in the footer of both parts.
type Config struct {
	// SenderName is the sender's name (氏名又は名称), e.g. "AIセーフティ・
	// インスティテュート". Required.
	SenderName string
	// PostalAddress is the sender's postal address. Required.
	PostalAddress string
	// Contact is a phone number, e-mail address or URL for enquiries and
	// complaints. An http(s) URL is shown as a link. Required.
	Contact string
	// WebURL is the address of the web copy of an issue; "{slug}" is
	// replaced by the issue's slug, e.g.
	// "https://news.example.jp/issues/{slug}". Empty: no web link.
	WebURL string
	// MaxVariants caps the number of rendered variants kept in the cache;
	// when it is full, the variants rendered first are dropped first.
	// Zero or negative: 1024 (about 60 MB for issues the size of the
	// samples).
	MaxVariants int
	// Logger receives a debug record per render. Nil: discard.
	Logger *slog.Logger
}

// Renderer renders issues into [Variant]s and caches them by issue slug,
// a fingerprint of the issue's content and [Selection.Key], so that an issue
// edited under the same slug is rendered afresh. A Renderer is safe for
// concurrent use; concurrent calls for the same variant render it once.
type Renderer struct {
	cfg    Config
	logger *slog.Logger
	seed   maphash.Seed

	mu    sync.Mutex
	cache map[cacheKey]*cacheEntry
	order []cacheKey // insertion order, for eviction
}

type cacheKey struct {
	links string // Links.Key: "" for links as written
	slug  string
	sum   uint64 // fingerprint of the issue's content
	key   string // Selection.Key
}

type cacheEntry struct {
	done chan struct{} // closed when v and err are set
	v    *Variant
	err  error
}

// New returns a Renderer for cfg, or an error wrapping [ErrInvalidConfig]
// that lists every missing field.
func New(cfg Config) (*Renderer, error) {
	var errs []error
	for _, f := range [...]struct{ name, v string }{
		{"SenderName", cfg.SenderName},
		{"PostalAddress", cfg.PostalAddress},
		{"Contact", cfg.Contact},
	} {
		if strings.TrimSpace(f.v) == "" {
			errs = append(errs, fmt.Errorf("%w: %s is required (特定電子メール法 Art. 4)", ErrInvalidConfig, f.name))
		}
	}
	if cfg.WebURL != "" && !isHTTPURL(cfg.WebURL) {
		errs = append(errs, fmt.Errorf("%w: WebURL %q is not an http(s) URL", ErrInvalidConfig, cfg.WebURL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.MaxVariants <= 0 {
		cfg.MaxVariants = 1024
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Renderer{cfg: cfg, logger: logger, seed: maphash.MakeSeed(), cache: make(map[cacheKey]*cacheEntry)}, nil
}

// Render returns the variant of issue holding the items of sel, rendering
// it on first use and returning the cached variant afterwards (a cache hit
// costs a hash of the issue's text, a few microseconds). sel must come from
// [Select] or [SelectAll] on the same issue; an empty selection gives
// [ErrNothingToSend].
func (r *Renderer) Render(issue *compose.Issue, sel Selection) (*Variant, error) {
	return r.RenderLinks(issue, sel, nil)
}

// Links rewrites the item links of the variants [Renderer.RenderLinks]
// renders, as counting clicks does (package clicks): the anchor of link
// number link of item number item (counting through the sections, as
// [Selection] does) goes to URL(item, link), and the text part shows that
// address after the link's label. The HTML part still shows the URL as
// written. A URL that returns "" or a non-http(s) address keeps the link
// as written. Unsubscribe, preference and web-copy links are never
// rewritten.
type Links struct {
	// Key names the rewriting in the renderer's cache, e.g. "send:42":
	// two Links with the same Key must rewrite alike. Required.
	Key string
	URL func(item, link int) string
}

// RenderLinks is [Renderer.Render] with the item links rewritten by
// links (nil: as written, which is Render). The rewritten variant is
// rendered once and cached like any other, so rewriting costs nothing per
// copy.
func (r *Renderer) RenderLinks(issue *compose.Issue, sel Selection, links *Links) (*Variant, error) {
	if issue == nil {
		return nil, fmt.Errorf("%w: nil issue", ErrInvalidIssue)
	}
	if sel.n == 0 && sel.nMarked == 0 {
		return nil, fmt.Errorf("render %s: %w", issue.Slug, ErrNothingToSend)
	}
	if links != nil && (links.Key == "" || links.URL == nil) {
		return nil, fmt.Errorf("render %s: %w: Links without a Key or URL", issue.Slug, ErrInvalidIssue)
	}
	k := cacheKey{slug: issue.Slug, sum: fingerprint(r.seed, issue), key: sel.key}
	if links != nil {
		k.links = links.Key
	}
	r.mu.Lock()
	e, ok := r.cache[k]
	if !ok {
		e = &cacheEntry{done: make(chan struct{})}
		r.insert(k, e)
	}
	r.mu.Unlock()
	if ok {
		<-e.done
		return e.v, e.err
	}
	e.v, e.err = r.render(issue, sel, links)
	close(e.done)
	if e.err != nil {
		r.mu.Lock()
		if r.cache[k] == e {
			delete(r.cache, k)
		}
		r.mu.Unlock()
	}
	return e.v, e.err
}

// insert adds e under k, evicting the oldest entries when full. r.mu held.
func (r *Renderer) insert(k cacheKey, e *cacheEntry) {
	for len(r.cache) >= r.cfg.MaxVariants && len(r.order) > 0 {
		delete(r.cache, r.order[0])
		r.order = r.order[1:]
	}
	r.cache[k] = e
	r.order = append(r.order, k)
}

// Forget drops every cached variant of the issue with the given slug, for
// example when an issue is withdrawn; edits need no Forget, since the cache
// key includes a fingerprint of the content.
func (r *Renderer) Forget(slug string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.order[:0]
	for _, k := range r.order {
		if k.slug == slug {
			delete(r.cache, k)
			continue
		}
		kept = append(kept, k)
	}
	r.order = kept
}

// render does the work of Render without the cache.
func (r *Renderer) render(issue *compose.Issue, sel Selection, links *Links) (*Variant, error) {
	start := time.Now()
	if err := checkIssue(issue); err != nil {
		return nil, err
	}
	if sel.total != countItems(issue) || len(sel.marked) != countMarked(issue) {
		return nil, fmt.Errorf("render %s: %w (made for %d items, issue has %d)", issue.Slug, ErrInvalidSelection, sel.total, countItems(issue))
	}
	v := buildView(issue, sel, &r.cfg, links)
	if v.items == 0 && !v.OnlyNothing {
		return nil, fmt.Errorf("render %s: %w", issue.Slug, ErrNothingToSend)
	}

	html, err := renderHTML(&v, &r.cfg)
	if err != nil {
		return nil, fmt.Errorf("render %s html: %w", issue.Slug, err)
	}
	var tb strings.Builder
	tb.Grow(len(html) / 2)
	writeText(&tb, &v)

	out := &Variant{Slug: issue.Slug, Key: sel.key, Subject: issue.Title, Items: v.items, Sections: len(v.Sections)}
	if out.Subject == "" {
		out.Subject = v.Title
	}
	if out.html, err = split(html, fieldName, fieldUnsubscribe, fieldPreferences); err != nil {
		return nil, fmt.Errorf("render %s html: %w", issue.Slug, err)
	}
	if out.text, err = split(tb.String(), fieldName, fieldUnsubscribe, fieldPreferences); err != nil {
		return nil, fmt.Errorf("render %s text: %w", issue.Slug, err)
	}
	r.logger.Debug("rendered variant", "issue", issue.Slug, "variant", sel.key,
		"items", v.items, "html_bytes", out.html.size, "text_bytes", out.text.size,
		"duration", time.Since(start))
	return out, nil
}

func checkIssue(issue *compose.Issue) error {
	var errs []error
	if strings.TrimSpace(issue.Slug) == "" {
		errs = append(errs, fmt.Errorf("%w: no slug", ErrInvalidIssue))
	}
	if strings.TrimSpace(issue.Title) == "" && strings.TrimSpace(issue.Newsletter) == "" {
		errs = append(errs, fmt.Errorf("%w: no title", ErrInvalidIssue))
	}
	if containsPlaceholder(issue) {
		errs = append(errs, fmt.Errorf("%w: text contains the reserved marker %q", ErrInvalidIssue, placeholderPrefix))
	}
	return errors.Join(errs...)
}
