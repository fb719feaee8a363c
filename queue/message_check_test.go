package queue_test

import (
	"html"
	"net/mail"
	"regexp"
	"testing"

	"github.com/tayori-news/tayori/internal/testutil"
)

// parsed is a delivered message taken apart.
type parsed struct {
	h    mail.Header
	text string
	html string
}

// angleURIs finds the <URI>s of a List-Unsubscribe field.
var angleURIs = regexp.MustCompile(`<([^>]+)>`)

// checkMessage applies the deliverability checklist's message items
// (testutil.CheckMessage: 1–13 and 16; DKIM, 14–15, is off in these tests)
// to a copy the worker delivered, and returns its decoded parts (HTML
// entities unescaped) for the callers' checks of what the reader got.
func checkMessage(t testing.TB, raw []byte, wantSubject string) parsed {
	t.Helper()
	m := testutil.CheckMessage(t, raw, testutil.MessageWant{
		FromEmail: "newsletter@news.example.go.jp",
		FromName:  "AI政策動向",
		Subject:   wantSubject,
	})
	return parsed{h: m.Header, text: m.Text, html: html.UnescapeString(m.HTML)}
}
