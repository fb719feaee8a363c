package queue_test

import (
	"bytes"
	"encoding/base64"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// parsed is a delivered message taken apart.
type parsed struct {
	h    mail.Header
	text string
	html string
}

var (
	msgIDRE     = regexp.MustCompile(`^<[^<>@\s]+@news\.example\.go\.jp>$`)
	feedbackRE  = regexp.MustCompile(`^[^:]*:[^:]*:[^:]*:[A-Za-z0-9]{5,15}$`)
	listIDRE    = regexp.MustCompile(`<[A-Za-z0-9.-]+\.news\.example\.go\.jp>$`)
	encodedWord = regexp.MustCompile(`=\?[Uu][Tt][Ff]-8\?[BbQq]\?[^?]*\?=`)
	angleURIs   = regexp.MustCompile(`<([^>]+)>`)
	wordDecoder = new(mime.WordDecoder)
)

// checkMessage applies the deliverability checklist's message items 1–13
// and 16 (DKIM, 14–15, is off in these tests) to raw, and returns the
// decoded parts for item 28 checks by the caller.
func checkMessage(t testing.TB, raw []byte, wantSubject string) parsed {
	t.Helper()
	// 4: CRLF only, lines ≤ 998; 5: header lines ≤ 78.
	lines := strings.Split(string(raw), "\r\n")
	inHeader := true
	for i, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("line %d has a bare CR or LF", i+1)
		}
		if len(l) > 998 {
			t.Errorf("line %d is %d octets", i+1, len(l))
		}
		if inHeader && l == "" {
			inHeader = false
		}
		// A line that is one unbreakable token (a long URI) cannot be folded.
		if inHeader && len(l) > 78 && strings.ContainsAny(strings.TrimSpace(l), " \t") {
			t.Errorf("header line %d is %d octets: %q", i+1, len(l), l)
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	h := m.Header
	// 1: exactly one of each.
	for _, k := range []string{"From", "Date", "Message-Id", "Subject", "To", "Mime-Version"} {
		if len(h[k]) != 1 {
			t.Errorf("%s appears %d times", k, len(h[k]))
		}
	}
	if strings.TrimSpace(h.Get("Mime-Version")) != "1.0" {
		t.Errorf("MIME-Version %q", h.Get("Mime-Version"))
	}
	// 2
	if !msgIDRE.MatchString(h.Get("Message-Id")) {
		t.Errorf("Message-ID %q", h.Get("Message-Id"))
	}
	// 3 (send clock is the real clock here)
	if d, err := mail.ParseDate(h.Get("Date")); err != nil {
		t.Errorf("Date: %v", err)
	} else if ago := timeSince(d); ago < -5*60 || ago > 5*60 {
		t.Errorf("Date %v is %v s from now", d, ago)
	}
	// 6: encoded words ≤ 75, whole characters, decode to the title.
	headerBlock := string(raw[:bytes.Index(raw, []byte("\r\n\r\n"))])
	for _, w := range encodedWord.FindAllString(headerBlock, -1) {
		if len(w) > 75 {
			t.Errorf("encoded word of %d chars", len(w))
		}
		d, err := wordDecoder.Decode(w)
		if err != nil || !utf8.ValidString(d) {
			t.Errorf("encoded word %q does not decode to whole characters (%v)", w, err)
		}
	}
	subj, err := wordDecoder.DecodeHeader(h.Get("Subject"))
	if err != nil || subj != wantSubject {
		t.Errorf("Subject %q (%v), want %q", subj, err, wantSubject)
	}
	if !encodedWord.MatchString(h.Get("Subject")) {
		t.Errorf("Japanese Subject not RFC 2047 encoded: %q", h.Get("Subject"))
	}
	// 7
	from, err := (&mail.AddressParser{WordDecoder: wordDecoder}).Parse(h.Get("From"))
	if err != nil {
		t.Errorf("From: %v", err)
	} else if from.Name != "AI政策動向" || !strings.HasSuffix(from.Address, "@news.example.go.jp") {
		t.Errorf("From %q <%s>", from.Name, from.Address)
	}
	// 10
	if h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted %q", h.Get("Auto-Submitted"))
	}
	// 11
	if len(h["Feedback-Id"]) != 1 || !feedbackRE.MatchString(h.Get("Feedback-Id")) {
		t.Errorf("Feedback-ID %q", h["Feedback-Id"])
	}
	// 12, 13
	var https int
	for _, u := range angleURIs.FindAllStringSubmatch(h.Get("List-Unsubscribe"), -1) {
		if strings.HasPrefix(u[1], "https://") {
			https++
		}
	}
	if https != 1 {
		t.Errorf("List-Unsubscribe %q has %d https URIs", h.Get("List-Unsubscribe"), https)
	}
	if strings.TrimSpace(h.Get("List-Unsubscribe-Post")) != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %q", h.Get("List-Unsubscribe-Post"))
	}
	// 16
	if !listIDRE.MatchString(h.Get("List-Id")) {
		t.Errorf("List-Id %q", h.Get("List-Id"))
	}
	// 8, 9
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v)", h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var p parsed
	p.h = h
	var types []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		ct, cp, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		types = append(types, ct)
		if !strings.EqualFold(cp["charset"], "utf-8") {
			t.Errorf("part %s charset %q", ct, cp["charset"])
		}
		cte := strings.ToLower(part.Header.Get("Content-Transfer-Encoding"))
		rawPart, _ := io.ReadAll(part) // multipart decodes only quoted-printable itself
		if cte != "base64" {
			t.Fatalf("part %s Content-Transfer-Encoding %q, want base64", ct, cte)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(rawPart)), "\r\n") {
			if len(l) > 76 {
				t.Errorf("base64 line of %d chars", len(l))
			}
		}
		dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(rawPart), "\r\n", ""))
		if err != nil {
			t.Fatalf("part %s: %v", ct, err)
		}
		if !utf8.Valid(dec) {
			t.Errorf("part %s is not valid UTF-8", ct)
		}
		switch ct {
		case "text/plain":
			p.text = string(dec)
		case "text/html":
			p.html = html.UnescapeString(string(dec))
		}
	}
	if len(types) != 2 || types[0] != "text/plain" || types[1] != "text/html" {
		t.Errorf("parts %v, want text/plain then text/html", types)
	}
	return p
}
