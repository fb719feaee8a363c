package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed pages/*.html
var pagesFS embed.FS

//go:embed static
var staticFS embed.FS

// pageSet holds one template per page, each joined with the layout.
type pageSet struct {
	byName map[string]*template.Template
}

// pageFuncs are the template functions; dates show in loc.
func pageFuncs(loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"pct": func(a, b int64) int64 {
			if b <= 0 {
				return 0
			}
			return a * 100 / b
		},
		"fmtTime": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(loc).Format("2006-01-02 15:04 MST")
		},
		// zone names loc for labels ("JST"; "+07" where the zone has no
		// abbreviation).
		"zone": func() string { return time.Now().In(loc).Format("MST") },
		"join": strings.Join,
		"inc":  func(i int) int { return i + 1 },
		// fieldID is the element id of a composer field ("s0.heading").
		"fieldID": fieldID,
		"list":    func(s ...string) []string { return s },
	}
}

// tokyo is the default Config.Location.
var tokyo = func() *time.Location {
	if l, err := time.LoadLocation("Asia/Tokyo"); err == nil {
		return l
	}
	return time.FixedZone("JST", 9*3600)
}()

func loadPages(loc *time.Location) (*pageSet, error) {
	layout, err := template.New("layout.html").Funcs(pageFuncs(loc)).ParseFS(pagesFS, "pages/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: pages: %w", err)
	}
	names, err := fs.Glob(pagesFS, "pages/*.html")
	if err != nil {
		return nil, err
	}
	ps := &pageSet{byName: map[string]*template.Template{}}
	for _, n := range names {
		if n == "pages/layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(pagesFS, n)
		if err != nil {
			return nil, fmt.Errorf("web: pages: %w", err)
		}
		ps.byName[strings.TrimSuffix(strings.TrimPrefix(n, "pages/"), ".html")] = t
	}
	return ps, nil
}

// page is what every page template receives.
type page struct {
	Lang   string
	Cfg    *Config
	Admin  bool   // console page (console navigation, admin.js)
	Editor string // signed-in editor's name
	CSRF   string // the session's CSRF token for forms
	Data   any
}

// T translates key into the page's language; placeholders {sender},
// {address} and {contact} are filled from the configuration, more from
// vars (name, value pairs).
func (p *page) T(key string, vars ...string) string {
	all := append([]string{"sender", p.Cfg.SenderName, "address", p.Cfg.PostalAddress, "contact", p.Cfg.Contact}, vars...)
	return translate(p.Lang, key, all...)
}

// render writes page name with status. Rendering goes to a buffer first
// so that a template error becomes a clean 500.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t := s.pages.byName[name]
	if t == nil {
		s.fail(w, r, fmt.Errorf("web: no page %q", name))
		return
	}
	if p.Lang == "" {
		p.Lang = pickLang(r)
	}
	p.Cfg = &s.cfg
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", p.Lang)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// messageData is the data of the generic message page.
type messageData struct {
	Kind  string // "", "ok", "warn", "error"
	Title string
	Body  []string
	Link  *linkData
}

type linkData struct{ Href, Label string }

func (s *server) message(w http.ResponseWriter, r *http.Request, status int, d messageData) {
	s.render(w, r, status, "message", &page{Data: d})
}

// pageError answers a public page request that failed: the status and
// page follow the error table; internal errors are logged once here.
func (s *server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := classify(err)
	s.logError(r, err, status)
	switch code {
	case codeExpiredToken:
		s.message(w, r, status, messageData{Kind: "warn", Title: "token.expired_title", Body: []string{"token.expired"},
			Link: &linkData{Href: "/subscribe", Label: "token.restart"}})
	case codeInvalidToken:
		s.message(w, r, status, messageData{Kind: "error", Title: "token.invalid_title", Body: []string{"token.invalid"}})
	case codeTooMany:
		w.Header().Set("Retry-After", "600")
		s.message(w, r, status, messageData{Kind: "warn", Title: "ratelimit.title", Body: []string{"ratelimit.body"}})
	case codeNotFound:
		s.message(w, r, status, messageData{Kind: "error", Title: "notfound.title", Body: []string{"notfound.body"},
			Link: &linkData{Href: "/archive", Label: "nav.archive"}})
	default:
		s.message(w, r, status, messageData{Kind: "error", Title: "error.title", Body: []string{"error.body"}})
	}
}

// fail answers with a bare 500 after logging.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.logError(r, err, http.StatusInternalServerError)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// logError logs a failed request once: server errors at error level,
// client errors at debug (they are the client's business).
func (s *server) logError(r *http.Request, err error, status int) {
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", redactPath(r.URL.Path), "status", status, "err", err)
	} else {
		s.log.DebugContext(r.Context(), "request refused", "method", r.Method, "path", redactPath(r.URL.Path), "status", status, "err", err)
	}
}

// redactPath hides the token of /confirm/, /p/ and /u/ paths in logs.
func redactPath(p string) string {
	for _, pre := range []string{"/confirm/", "/p/", "/u/", "/c/"} {
		if strings.HasPrefix(p, pre) && len(p) > len(pre)+8 {
			return p[:len(pre)+8] + "…"
		}
	}
	return p
}
