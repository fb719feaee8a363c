package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed i18n/*.json
var i18nFS embed.FS

// Languages, Japanese first: a page is Japanese unless the reader prefers
// English, and a string missing in one language falls back to the other.
const (
	langJA = "ja"
	langEN = "en"
)

var catalog = func() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, l := range []string{langJA, langEN} {
		b, err := i18nFS.ReadFile("i18n/" + l + ".json")
		if err != nil {
			panic(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("i18n/%s.json: %v", l, err))
		}
		// A feature may keep its strings apart, in i18n/<feature>.<lang>.json.
		extra, _ := fs.Glob(i18nFS, "i18n/*."+l+".json")
		for _, name := range extra {
			b, err := i18nFS.ReadFile(name)
			if err != nil {
				panic(err)
			}
			if err := json.Unmarshal(b, &m); err != nil {
				panic(fmt.Sprintf("%s: %v", name, err))
			}
		}
		out[l] = m
	}
	return out
}()

// translate returns the string key in lang with {name} placeholders
// replaced from vars (name, value pairs).
func translate(lang, key string, vars ...string) string {
	s, ok := catalog[lang][key]
	if !ok {
		other := langJA
		if lang == langJA {
			other = langEN
		}
		if s, ok = catalog[other][key]; !ok {
			return key
		}
	}
	if len(vars) > 1 {
		pairs := make([]string, 0, len(vars))
		for i := 0; i+1 < len(vars); i += 2 {
			pairs = append(pairs, "{"+vars[i]+"}", vars[i+1])
		}
		s = strings.NewReplacer(pairs...).Replace(s)
	}
	return s
}

// pickLang chooses the page language: ?lang= if given, else the first of
// ja or en in Accept-Language (by q-value), else Japanese.
func pickLang(r *http.Request) string {
	switch r.URL.Query().Get("lang") {
	case langEN:
		return langEN
	case langJA:
		return langJA
	}
	best, bestQ := langJA, -1.0
	for part := range strings.SplitSeq(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		base, _, _ := strings.Cut(tag, "-")
		if base != langJA && base != langEN {
			continue
		}
		q := 1.0
		if p := strings.TrimSpace(params); strings.HasPrefix(p, "q=") {
			if _, err := fmt.Sscanf(p[2:], "%g", &q); err != nil {
				q = 0
			}
		}
		if q > bestQ {
			best, bestQ = base, q
		}
	}
	return best
}
