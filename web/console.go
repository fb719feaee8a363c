package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/templates"
)

// The console speaks Japanese, with English on request: ?lang=en (or ja)
// switches and is remembered in a cookie. Its messages are for editors:
// never an internal code or a Go error.

func (s *server) langCookie() string {
	if s.cfg.secure() {
		return "__Host-tayori_lang"
	}
	return "tayori_lang"
}

// adminLang is the console's language for r: ?lang=, else the cookie,
// else Japanese (editors read Japanese first, whatever their browser).
func (s *server) adminLang(r *http.Request) string {
	switch r.URL.Query().Get("lang") {
	case langEN:
		return langEN
	case langJA:
		return langJA
	}
	if c, err := r.Cookie(s.langCookie()); err == nil && c.Value == langEN {
		return langEN
	}
	return langJA
}

// rememberLang keeps a ?lang= choice for the next console pages.
func (s *server) rememberLang(w http.ResponseWriter, r *http.Request) {
	if l := r.URL.Query().Get("lang"); l == langEN || l == langJA {
		http.SetCookie(w, &http.Cookie{Name: s.langCookie(), Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: s.cfg.secure(), SameSite: http.SameSiteLaxMode})
	}
}

// consoleKeys maps the messages that handlers raise (in English, for the
// API and the logs) to the console's wording.
var consoleKeys = map[string]string{
	"choose a file to upload":                                                 "cerr.choose_file",
	"choose a CSV file":                                                       "cerr.choose_csv",
	"too many test sends this hour":                                           "cerr.test_sends",
	"the queue is not configured":                                             "cerr.no_queue",
	"schedule time must look like 2026-12-01T09:00":                           "cerr.schedule",
	"tick the box to confirm the erasure":                                     "cerr.erase_confirm",
	"sign in first":                                                           "cerr.sign_in",
	"cross-origin request refused":                                            "cerr.forbidden",
	"missing or wrong CSRF token: reload the page and try again":              "cerr.csrf",
	"the issue has lint errors: fix them, or send anyway with force":          "cerr.lint",
	"at is in the past":                                                       "cerr.past",
	"no section of this issue matches these regions and topics":               "c.preview_nothing",
	"too many sign-in attempts: wait a few minutes":                           "cerr.login_rate",
	"unreadable form":                                                         "cerr.form",
	"the newest revision of the issue does not parse: fix it in the composer": "cerr.head_invalid",
}

// consoleMessage is what an editor is told about err, in lang: the
// handler's own message when the console has words for it, else the
// meaning of its code. Never the error's text.
func consoleMessage(lang string, err error) string {
	code, _ := classify(err)
	var he *httpError
	if errors.As(err, &he) {
		if strings.HasPrefix(he.msg, "c.") || strings.HasPrefix(he.msg, "cerr.") {
			return translate(lang, he.msg)
		}
		if k, ok := consoleKeys[he.msg]; ok {
			return translate(lang, k)
		}
	}
	return translate(lang, "cerr."+code)
}

// prefsLabelIn names a reader's choice for people: "日本・米国 / 政策動向".
func prefsLabelIn(lang string, p audience.Prefs) string {
	var rs, ts []string
	for _, r := range p.Regions {
		rs = append(rs, translate(lang, "region."+string(r)))
	}
	for _, t := range p.Topics {
		ts = append(ts, translate(lang, "topic."+string(t)))
	}
	sep := "・"
	if lang == langEN {
		sep = ", "
	}
	return strings.Join(rs, sep) + " / " + strings.Join(ts, sep)
}

// variantLabel names a variant for people by what its copies hold: the
// regions and topics of the items a reader with prefs gets ("日本・米国 /
// 政策動向"), in the order of the standard lists.
func variantLabel(lang string, issue *compose.Issue, prefs audience.Prefs) string {
	sel, err := templates.Select(issue, prefs)
	if err != nil {
		return prefsLabelIn(lang, prefs)
	}
	regions := map[audience.Region]bool{}
	topics := map[audience.Topic]bool{}
	idx := 0
	for _, sec := range issue.Sections {
		for _, it := range sec.Items {
			if sel.Includes(idx) {
				regions[it.Region] = true
				topics[sec.Kind] = true
			}
			idx++
		}
	}
	var p audience.Prefs
	for _, r := range audience.Regions {
		if regions[r] {
			p.Regions = append(p.Regions, r)
		}
	}
	for _, t := range audience.StandardTopics {
		if topics[t] {
			p.Topics = append(p.Topics, t)
		}
	}
	return prefsLabelIn(lang, p)
}
