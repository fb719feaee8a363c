package web

import (
	"bytes"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/subscribers"
)

func TestParseSignupListsEveryProblem(t *testing.T) {
	_, problems := parseSignup(url.Values{"email": {"x"}, "name": {strings.Repeat("名", 201)}})
	want := []string{"err.email", "err.name", "err.regions", "err.topics", "err.consent"}
	if !slices.Equal(problems, want) {
		t.Errorf("problems %v, want %v", problems, want)
	}
	f, problems := parseSignup(url.Values{"email": {" Taro@Example.JP "}, "region": {"EU", "jp", "mars"},
		"topic": {"policy", "custom-tag"}, "consent": {"yes"}, "lang": {"en"}})
	if len(problems) != 0 || f.Norm != "Taro@example.jp" || f.Prefs.Key() != "jp,eu|policy" || f.Lang != "en" {
		t.Errorf("parsed %+v %v", f, problems)
	}
}

func TestOneClickBodies(t *testing.T) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("List-Unsubscribe", "One-Click")
	mw.Close()
	for _, tc := range []struct {
		ct, body string
		want     bool
	}{
		{"application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", true},
		{"application/x-www-form-urlencoded; charset=utf-8", "List-Unsubscribe=One-Click", true},
		{mw.FormDataContentType(), buf.String(), true},
		{"application/x-www-form-urlencoded", "List-Unsubscribe=Two-Clicks", false},
		{"text/plain", "List-Unsubscribe=One-Click", false},
		{"multipart/form-data", buf.String(), false}, // no boundary
		{"", "", false},
	} {
		if got := oneClick(tc.ct, []byte(tc.body)); got != tc.want {
			t.Errorf("oneClick(%q, %q) = %v", tc.ct, tc.body, got)
		}
	}
}

func TestPickLang(t *testing.T) {
	for al, want := range map[string]string{
		"": "ja", "en": "en", "ja,en;q=0.8": "ja", "en-US,en;q=0.9,ja;q=0.8": "en", "fr,de": "ja",
		"fr, en;q=0.5, ja;q=0.7": "ja", "en;q=bogus,ja;q=0.1": "ja",
	} {
		r, _ := newRequest(al)
		if got := pickLang(r); got != want {
			t.Errorf("Accept-Language %q: %s, want %s", al, got, want)
		}
	}
}

// FuzzParseSignup: any form body parses without panic, and a form without
// problems yields a normalised address (a fixed point of NormalizeEmail),
// non-empty normalised preferences and a ticked consent.
func FuzzParseSignup(f *testing.F) {
	f.Add("email=taro%40example.jp&region=jp&topic=policy&consent=yes")                           // valid
	f.Add("email=%E5%A4%AA%E9%83%8E%40%E4%BE%8B%E3%81%88.jp&region=eu&topic=reports&consent=yes") // IDN domain
	f.Add("email=a%0D%0ABcc%3Ax%40y.jp&region=jp&topic=policy&consent=yes")                       // header injection attempt
	f.Add("email=&name=%FF%FE&region=&topic=")                                                    // invalid UTF-8 name
	f.Add("website=spam&email=bot%40example.jp&consent=yes")                                      // honeypot
	f.Add("region=JP&region=jp&region=mars&topic=custom&consent=on")                              // odd values
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		form, problems := parseSignup(v)
		if !utf8.ValidString(form.Name) && !slices.Contains(problems, "err.name") {
			t.Fatalf("invalid name accepted: %q", form.Name)
		}
		if len(problems) > 0 {
			return
		}
		again, err := subscribers.NormalizeEmail(form.Norm)
		if err != nil || again != form.Norm {
			t.Fatalf("normalised %q is not a fixed point: %q %v", form.Norm, again, err)
		}
		if strings.ContainsAny(form.Norm, "\r\n") || !form.Consent {
			t.Fatalf("accepted %+v", form)
		}
		if len(form.Prefs.Regions) == 0 || len(form.Prefs.Topics) == 0 {
			t.Fatalf("empty preferences accepted: %+v", form.Prefs)
		}
		if !slices.Equal(form.Prefs.Regions, audience.NormalizeRegions(form.Prefs.Regions)) {
			t.Fatalf("regions not normalised: %v", form.Prefs.Regions)
		}
		for _, tp := range form.Prefs.Topics {
			if !tp.IsStandard() {
				t.Fatalf("custom topic %q from the public form", tp)
			}
		}
	})
}

// FuzzOneClick: no body makes the one-click parser panic, and a body it
// accepts really carries List-Unsubscribe=One-Click.
func FuzzOneClick(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")
	f.Add("multipart/form-data; boundary=XYZ", "--XYZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XYZ--\r\n")
	f.Add("multipart/form-data; boundary=XYZ", "--XYZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n")
	f.Add("application/x-www-form-urlencoded", "%zz")
	f.Add("text/html; charset", "")
	f.Fuzz(func(t *testing.T, ct, body string) {
		if oneClick(ct, []byte(body)) && !strings.Contains(body, "One-Click") && !strings.Contains(body, "One%2DClick") && !strings.Contains(body, "One%2dClick") {
			t.Fatalf("accepted a body without One-Click: %q %q", ct, body)
		}
	})
}

func newRequest(acceptLanguage string) (*http.Request, error) {
	r, err := http.NewRequest("GET", "/subscribe", nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Accept-Language", acceptLanguage)
	return r, nil
}

// The pages must work under the CSP (no inline script or style).
func TestPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	names, err := fs.Glob(pagesFS, "pages/*.html")
	if err != nil || len(names) == 0 {
		t.Fatal(names, err)
	}
	for _, n := range names {
		b, _ := pagesFS.ReadFile(n)
		s := string(b)
		for _, bad := range []string{`style="`, "<style", "<script>", " onclick=", " onsubmit=", "javascript:"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q, which the CSP blocks", n, bad)
			}
		}
	}
}
