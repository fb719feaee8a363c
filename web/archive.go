package web

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/templates"
)

// archived is one sent issue in the archive.
type archived struct {
	Slug  string
	Title string
	Sent  time.Time
	Issue *compose.Issue
	// From and To are the days the issue covers (compose's PeriodRange);
	// zero when the issue does not say, and then Sent stands in.
	From, To time.Time
}

// Date is the day the archive orders the issue by: the end of its
// period, else when it was sent.
func (a archived) Date() time.Time {
	if !a.To.IsZero() {
		return a.To
	}
	return a.Sent
}

// PeriodText is the issue's period as the archive shows it:
// "2025年11月" for a whole month, "2025年11月1日〜11月15日" otherwise, the
// sending day when the issue has no period.
func (a archived) PeriodText() string { return a.PeriodIn(langJA) }

// PeriodIn is PeriodText in lang ("November 2025", "1 Nov – 15 Nov 2025"
// in English).
func (a archived) PeriodIn(lang string) string {
	if lang == langEN {
		switch {
		case a.From.IsZero():
			return a.Sent.Format("2 January 2006")
		case a.From.Day() == 1 && a.To.AddDate(0, 0, 1).Day() == 1 && a.From.Year() == a.To.Year() && a.From.Month() == a.To.Month():
			return a.From.Format("January 2006")
		}
		return a.From.Format("2 Jan 2006") + " – " + a.To.Format("2 Jan 2006")
	}
	if a.From.IsZero() {
		return a.Sent.Format("2006年1月2日")
	}
	if a.From.Day() == 1 && a.To.AddDate(0, 0, 1).Day() == 1 && a.From.Year() == a.To.Year() && a.From.Month() == a.To.Month() {
		return a.From.Format("2006年1月")
	}
	if a.From.Year() == a.To.Year() {
		return a.From.Format("2006年1月2日") + "〜" + a.To.Format("1月2日")
	}
	return a.From.Format("2006年1月2日") + "〜" + a.To.Format("2006年1月2日")
}

// maxArchive bounds how many recent sends the archive looks at.
const maxArchive = 500

// archive returns the issues that went out (sends done, or sending with
// copies delivered), one entry per issue, the latest period first: an
// issue sent late, or sent again, keeps its place among the months.
func (s *server) archive(ctx context.Context) ([]archived, error) {
	if s.deps.Sends == nil {
		return nil, nil
	}
	sends, err := s.deps.Sends.List(ctx, maxArchive)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []archived
	for _, snd := range sends {
		if snd.Issue == nil || seen[snd.Issue.Slug] || !wentOut(snd) {
			continue
		}
		full, err := s.deps.Sends.Get(ctx, snd.ID)
		if err != nil {
			return nil, err
		}
		seen[snd.Issue.Slug] = true
		at := full.StartedAt
		if at.IsZero() {
			at = full.ScheduledAt
		}
		a := archived{Slug: full.Issue.Slug, Title: full.Issue.Title, Sent: at, Issue: full.Issue}
		if from, to, ok := full.Issue.PeriodRange(); ok {
			a.From, a.To = from, to
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b archived) int { return b.Date().Compare(a.Date()) })
	return out, nil
}

func wentOut(snd *queue.Send) bool {
	return snd.State == queue.Done || (snd.State != queue.Scheduled && snd.Counts.Sent > 0)
}

// handleArchive lists the sent issues (GET /archive).
func (s *server) handleArchive(w http.ResponseWriter, r *http.Request) {
	list, err := s.archive(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "archive", &page{Data: list})
}

// handleArchiveIssue shows one sent issue as a full web page, rendered by
// the newsletter templates with every section (GET /archive/{slug}).
func (s *server) handleArchiveIssue(w http.ResponseWriter, r *http.Request) {
	list, err := s.archive(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, a := range list {
		if a.Slug != r.PathValue("slug") {
			continue
		}
		// A correction made after the send is what the archive shows,
		// with a note and the sent version a link away.
		issue, banner := a.Issue, ""
		corrections, err := s.deps.Store.Corrections(r.Context(), a.Slug)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		lang := pickLang(r)
		self := "/archive/" + url.PathEscape(a.Slug)
		if n := len(corrections); n > 0 {
			last := corrections[n-1]
			if r.URL.Query().Get("v") == "sent" {
				banner = translate(lang, "archive.sent_version", "url", self)
			} else if rev, err := s.deps.Store.Revision(r.Context(), a.Slug, last.Number); err == nil {
				if corrected, err := compose.Parse(rev.SourceName, rev.Source); err == nil {
					issue = corrected
					var notes []string
					for _, c := range corrections {
						if c.Note != "" {
							notes = append(notes, c.Note)
						}
					}
					banner = translate(lang, "archive.corrected", "date", last.CreatedAt.In(s.cfg.Location).Format("2006-01-02"),
						"url", self+"?v=sent")
					if len(notes) > 0 {
						banner = strings.Replace(banner, "</p>", "（"+template.HTMLEscapeString(strings.Join(notes, "／"))+"）</p>", 1)
					}
				}
			}
		}
		html, _, err := s.renderIssue(issue, templates.SelectAll, templates.Personal{
			UnsubscribeURL: s.cfg.BaseURL + "/unsubscribe",
			PreferencesURL: s.cfg.BaseURL + "/unsubscribe",
		})
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		if banner != "" {
			html = withBanner(html, banner)
		}
		mailFrame(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(html)
		return
	}
	s.pageError(w, r, newError(codeNotFound, "no such issue in the archive"))
}

// withBanner puts a notice (trusted HTML) at the top of a rendered issue's
// body.
func withBanner(page []byte, banner string) []byte {
	i := bytes.Index(page, []byte("<body"))
	if i < 0 {
		return page
	}
	j := bytes.IndexByte(page[i:], '>')
	if j < 0 {
		return page
	}
	at := i + j + 1
	div := `<div id="correction" style="max-width:600px;margin:12px auto;padding:10px 14px;border-left:4px solid #8a5a00;` +
		`background:#fff8e6;color:#1d2433;font:14px/1.6 sans-serif;">` + banner + `</div>`
	out := make([]byte, 0, len(page)+len(div))
	out = append(out, page[:at]...)
	out = append(out, div...)
	return append(out, page[at:]...)
}

// renderIssue renders one variant of issue chosen by sel and fills in p.
func (s *server) renderIssue(issue *compose.Issue, sel func(*compose.Issue) (templates.Selection, error), p templates.Personal) (html, text []byte, err error) {
	if s.deps.Renderer == nil {
		return nil, nil, wrapError(codeUnavailable, "rendering is not configured", errors.New("web: no Renderer"))
	}
	selection, err := sel(issue)
	if err != nil {
		if errors.Is(err, templates.ErrNothingToSend) {
			return nil, nil, wrapError(codeNothingToSend, "no section of this issue matches these regions and topics", err)
		}
		return nil, nil, err
	}
	v, err := s.deps.Renderer.Render(issue, selection)
	if err != nil {
		if errors.Is(err, templates.ErrNothingToSend) {
			return nil, nil, wrapError(codeNothingToSend, "no section of this issue matches these regions and topics", err)
		}
		return nil, nil, fmt.Errorf("render %s: %w", issue.Slug, err)
	}
	return v.Personalize(p)
}

// Atom (RFC 4287) feed of the archive.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Lang    string      `xml:"xml:lang,attr"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
}

type atomEntry struct {
	ID      string   `xml:"id"`
	Title   string   `xml:"title"`
	Updated string   `xml:"updated"`
	Link    atomLink `xml:"link"`
	Summary string   `xml:"summary,omitempty"`
}

// handleFeed serves the archive as an Atom feed (GET /archive/feed.atom).
func (s *server) handleFeed(w http.ResponseWriter, r *http.Request) {
	list, err := s.archive(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	host := s.cfg.BaseURL
	if u, err := url.Parse(s.cfg.BaseURL); err == nil {
		host = u.Host
	}
	feed := atomFeed{
		Lang: "ja", ID: s.cfg.BaseURL + "/archive", Title: translate(langJA, "site.title", "sender", s.cfg.SenderName),
		Author: atomPerson{Name: s.cfg.SenderName},
		Links: []atomLink{{Href: s.cfg.BaseURL + "/archive/feed.atom", Rel: "self", Type: "application/atom+xml"},
			{Href: s.cfg.BaseURL + "/archive", Rel: "alternate", Type: "text/html"}},
		Updated: time.Unix(0, 0).UTC().Format(time.RFC3339),
	}
	for _, a := range list {
		if u := a.Sent.UTC().Format(time.RFC3339); u > feed.Updated {
			feed.Updated = u
		}
		summary := a.Issue.Preheader
		if summary == "" && len(a.Issue.Intro) > 0 {
			summary = a.Issue.Intro[0]
		}
		feed.Entries = append(feed.Entries, atomEntry{
			ID:      fmt.Sprintf("tag:%s,%s:%s", host, a.Sent.UTC().Format("2006-01-02"), a.Slug),
			Title:   a.Title,
			Updated: a.Sent.UTC().Format(time.RFC3339),
			Link:    atomLink{Href: s.cfg.BaseURL + "/archive/" + url.PathEscape(a.Slug), Rel: "alternate", Type: "text/html"},
			Summary: strings.TrimSpace(summary),
		})
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Write([]byte(xml.Header))
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(feed); err != nil {
		s.log.WarnContext(r.Context(), "write feed", "err", err)
	}
}
