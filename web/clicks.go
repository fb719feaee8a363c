package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/subscribers"
)

// Clicks counts clicks on the item links of sends in aggregate
// (implemented by *clicks.Counter). Without it /c/ links are unknown and
// send pages show no clicks.
type Clicks interface {
	// Click verifies a link token, counts one click and returns where to
	// go: clicks.ErrBadToken or clicks.ErrNotFound otherwise.
	Click(ctx context.Context, tok string) (string, error)
	// SendLinks returns a send's counted links with their counts (none:
	// the send did not count clicks).
	SendLinks(ctx context.Context, sendID int64) ([]clicks.Link, error)
}

// ListSettings reads and sets the per-list settings (implemented by
// *subscribers.Store). Without it /admin/lists says it is not set up.
type ListSettings interface {
	Lists(ctx context.Context) ([]subscribers.List, error)
	ListCountsClicks(ctx context.Context, list string) (bool, error)
	SetListCountsClicks(ctx context.Context, list string, on bool) error
	ListSkipsNothing(ctx context.Context, list string) (bool, error)
	SetListSkipsNothing(ctx context.Context, list string, skip bool) error
}

func (s *server) clickRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /c/{token}", s.handleClick) // also HEAD, which counts nothing
	mux.HandleFunc("GET /admin/lists", s.editor(s.handleAdminLists))
	mux.HandleFunc("POST /admin/lists/{key}", s.editor(s.handleAdminListSave))
}

// handleClick is the counting redirect of an item link: a valid token
// adds one to its link's count and answers 302 to the link's URL. Nothing
// about the reader is read or kept: no cookie is read or set, and the
// access log has no address. A HEAD (link checkers, some prefetchers) is
// answered without counting and without the destination. A bad, forged or
// unknown token gets the 404 page, never a redirect.
func (s *server) handleClick(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	tok := r.PathValue("token")
	if s.deps.Clicks == nil || len(tok) > clicks.MaxTokenLen {
		s.handleNotFound(w, r)
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	u, err := s.deps.Clicks.Click(r.Context(), tok)
	switch {
	case errors.Is(err, clicks.ErrBadToken), errors.Is(err, clicks.ErrNotFound):
		s.handleNotFound(w, r)
		return
	case err != nil:
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// clickSection is one section of a send's counted links, for the send
// page.
type clickSection struct {
	Title string
	Items []clickItem
	Total int64
}

type clickItem struct {
	Headline string
	Links    []clicks.Link
	Total    int64
}

// sendClicks groups a send's counted links by section and item; nil when
// the send did not count clicks.
func (s *server) sendClicks(ctx context.Context, sendID int64) ([]clickSection, int64, error) {
	if s.deps.Clicks == nil {
		return nil, 0, nil
	}
	links, err := s.deps.Clicks.SendLinks(ctx, sendID)
	if err != nil || len(links) == 0 {
		return nil, 0, err
	}
	var out []clickSection
	var total int64
	lastSection, lastItem := -1, -1
	for _, l := range links {
		if l.Section != lastSection {
			out = append(out, clickSection{Title: l.SectionTitle})
			lastSection, lastItem = l.Section, -1
		}
		sec := &out[len(out)-1]
		if l.Item != lastItem {
			sec.Items = append(sec.Items, clickItem{Headline: l.Headline})
			lastItem = l.Item
		}
		it := &sec.Items[len(sec.Items)-1]
		it.Links = append(it.Links, l)
		it.Total += l.Clicks
		sec.Total += l.Clicks
		total += l.Clicks
	}
	return out, total, nil
}

// listRow is one list with its settings, for /admin/lists.
type listRow struct {
	subscribers.List
	CountClicks bool
	SkipNothing bool
}

func (s *server) handleAdminLists(w http.ResponseWriter, r *http.Request) {
	d := map[string]any{"Ready": s.deps.Lists != nil, "Saved": r.URL.Query().Get("saved")}
	if s.deps.Lists != nil {
		lists, err := s.deps.Lists.Lists(r.Context())
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		rows := make([]listRow, 0, len(lists))
		for _, l := range lists {
			row := listRow{List: l}
			if row.CountClicks, err = s.deps.Lists.ListCountsClicks(r.Context(), l.Key); err != nil {
				s.adminError(w, r, err)
				return
			}
			if row.SkipNothing, err = s.deps.Lists.ListSkipsNothing(r.Context(), l.Key); err != nil {
				s.adminError(w, r, err)
				return
			}
			rows = append(rows, row)
		}
		d["Lists"] = rows
	}
	s.adminPage(w, r, http.StatusOK, "admin_lists", d)
}

// handleAdminListSave sets a list's settings from the form: count_clicks
// ("on" or absent) and nothing ("send" or "skip").
func (s *server) handleAdminListSave(w http.ResponseWriter, r *http.Request) {
	if s.deps.Lists == nil {
		s.adminError(w, r, newError(codeUnavailable, "list settings are not set up on this server"))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	key := r.PathValue("key")
	count := r.PostForm.Get("count_clicks") == "on"
	var skip bool
	switch r.PostForm.Get("nothing") {
	case "send":
	case "skip":
		skip = true
	default:
		s.adminError(w, r, newError(codeInvalid, "nothing: choose send or skip"))
		return
	}
	ctx := r.Context()
	if err := s.deps.Lists.SetListCountsClicks(ctx, key, count); err != nil {
		s.adminError(w, r, err)
		return
	}
	if err := s.deps.Lists.SetListSkipsNothing(ctx, key, skip); err != nil {
		s.adminError(w, r, err)
		return
	}
	detail := "クリック数を数えない"
	if count {
		detail = "クリック数を数える（集計のみ）"
	}
	if skip {
		detail += "・該当なしの読者に送らない"
	} else {
		detail += "・該当なしの読者に短いお知らせ"
	}
	s.audit(r, "list_settings", key, detail)
	s.log.InfoContext(ctx, "list settings saved", "list", key, "count_clicks", count, "skip_nothing", skip,
		"editor", editorFrom(ctx).Name)
	http.Redirect(w, r, "/admin/lists?saved="+urlQueryEscape(key), http.StatusSeeOther)
}
