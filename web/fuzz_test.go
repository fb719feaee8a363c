package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzTokenEndpoints throws arbitrary tokens at the three signed-link
// endpoints. Properties: no 5xx, never a redirect from one-click, and only
// the genuine unsubscribe token unsubscribes (a mutated one never does).
func FuzzTokenEndpoints(f *testing.F) {
	e := newEnv(f, envOpts{})
	victim := e.addActive("victim@example.jp")
	valid := must[string](f)(e.subs.UnsubscribeToken(victim.PublicID, testList))
	prefs := must[string](f)(e.subs.PreferencesToken(victim.PublicID, testList))
	f.Add(valid[:len(valid)-1] + "A")  // signature tampered
	f.Add(prefs[:len(prefs)-2] + "xx") // tampered preferences token
	f.Add("v1..")                      // empty parts
	f.Add("v1.AAAA.AAAA")              // short
	f.Add(strings.Repeat("v1.", 300))  // long
	f.Add("../admin")                  // path games
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == valid || tok == prefs || tok == "." || tok == ".." {
			return // genuine capabilities, or paths ServeMux cleans (307) before any handler
		}
		for _, p := range []string{"/u/", "/p/", "/confirm/"} {
			req := httptest.NewRequest("POST", "http://x"+p+url.PathEscape(tok), strings.NewReader("List-Unsubscribe=One-Click&action=unsubscribe"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			if rec.Code >= 500 || (p == "/u/" && rec.Code >= 300 && rec.Code < 400) {
				t.Fatalf("POST %s%q: %d", p, tok, rec.Code)
			}
			if p == "/u/" && rec.Code == http.StatusOK && tok != "" && !strings.HasPrefix(tok, "v1.") {
				t.Fatalf("POST /u/%q accepted", tok)
			}
		}
		if s, err := e.subs.Get(e.ctx, victim.ID); err != nil || !s.Sendable(testList) {
			t.Fatalf("token %q unsubscribed the victim", tok)
		}
	})
}
