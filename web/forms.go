package web

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/subscribers"
)

// ConsentVersion names the wording of the consent text shown on the
// subscribe and confirm pages (i18n key "consent.text"). Change it
// whenever that wording changes: it is stored with every consent record,
// with the SHA-256 of the exact text shown.
const ConsentVersion = "web-signup-2026-11"

// consentText returns the consent wording in lang for sender.
func consentText(lang, sender string) string {
	return translate(lang, "consent.text", "sender", sender)
}

// maxFormBytes bounds every public form body.
const maxFormBytes = 16 << 10

// signupForm is a parsed subscribe form.
type signupForm struct {
	Email    string // as typed (for redisplay)
	Norm     string // normalised; empty when invalid
	Name     string
	Prefs    audience.Prefs
	Consent  bool
	Honeypot bool // the hidden field was filled: a bot
	Lang     string
}

// parseSignup validates the subscribe form. It returns the i18n keys of
// every problem (never only the first), in field order.
func parseSignup(v url.Values) (signupForm, []string) {
	f := signupForm{
		Email:    truncate(v.Get("email"), subscribers.MaxEmailInput),
		Name:     strings.TrimSpace(v.Get("name")),
		Consent:  v.Get("consent") == "yes",
		Honeypot: strings.TrimSpace(v.Get("website")) != "",
		Lang:     langJA,
	}
	if v.Get("lang") == langEN {
		f.Lang = langEN
	}
	var problems []string
	if e, err := subscribers.NormalizeEmail(f.Email); err != nil {
		problems = append(problems, "err.email")
	} else {
		f.Norm = e
	}
	if !validName(f.Name) {
		problems = append(problems, "err.name")
		f.Name = truncate(f.Name, 200)
	}
	p, perr := parsePrefs(v)
	f.Prefs = p
	problems = append(problems, perr...)
	if !f.Consent {
		problems = append(problems, "err.consent")
	}
	return f, problems
}

// validName accepts up to 200 characters of valid UTF-8 without control
// characters (the store's own rule, checked here to redisplay the form).
func validName(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 200 {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// parsePrefs reads the checkboxes "region" and "topic" (standard topics
// only: the public form offers no custom tags). Unknown values are
// ignored; at least one of each is required.
func parsePrefs(v url.Values) (audience.Prefs, []string) {
	var p audience.Prefs
	var problems []string
	for _, s := range limitValues(v["region"]) {
		if r, err := audience.ParseRegion(s); err == nil {
			p.Regions = append(p.Regions, r)
		}
	}
	for _, s := range limitValues(v["topic"]) {
		if t, err := audience.ParseTopic(s); err == nil && t.IsStandard() {
			p.Topics = append(p.Topics, t)
		}
	}
	p.Regions = audience.NormalizeRegions(p.Regions)
	p.Topics = audience.NormalizeTopics(p.Topics)
	if len(p.Regions) == 0 {
		problems = append(problems, "err.regions")
	}
	if len(p.Topics) == 0 {
		problems = append(problems, "err.topics")
	}
	return p, problems
}

func limitValues(vs []string) []string {
	if len(vs) > 32 {
		return vs[:32]
	}
	return vs
}

// choice is one checkbox of a form.
type choice struct {
	Value   string
	Label   string // i18n key
	Checked bool
}

func regionChoices(p audience.Prefs) []choice {
	out := make([]choice, len(audience.Regions))
	for i, r := range audience.Regions {
		out[i] = choice{Value: string(r), Label: "region." + string(r), Checked: slices.Contains(p.Regions, r)}
	}
	return out
}

func topicChoices(p audience.Prefs) []choice {
	out := make([]choice, len(audience.StandardTopics))
	for i, t := range audience.StandardTopics {
		out[i] = choice{Value: string(t), Label: "topic." + string(t), Checked: slices.Contains(p.Topics, t)}
	}
	return out
}

// oneClick reports whether a POST body carries List-Unsubscribe=One-Click
// (RFC 8058 §3.2) as application/x-www-form-urlencoded or
// multipart/form-data. Malformed bodies give false, never an error: the
// signed token in the URL is what authorises the unsubscribe.
func oneClick(contentType string, body []byte) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		return err == nil && v.Get("List-Unsubscribe") == "One-Click"
	case "multipart/form-data":
		b := params["boundary"]
		if b == "" {
			return false
		}
		mr := multipart.NewReader(bytes.NewReader(body), b)
		for range 16 {
			part, err := mr.NextPart()
			if err != nil {
				return false
			}
			if part.FormName() == "List-Unsubscribe" {
				val, err := io.ReadAll(io.LimitReader(part, 64))
				return err == nil && strings.TrimSpace(string(val)) == "One-Click"
			}
		}
	}
	return false
}
