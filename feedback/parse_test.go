package feedback_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/feedback"
)

var update = flag.Bool("update", false, "rewrite the golden .json files of testdata/")

// TestParseGolden parses every report in testdata/ and compares the
// result with its .json golden file (rewritten with -update).
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) < 13 {
		t.Fatalf("fixtures: %v, %d files", err, len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			rep := mustParseFile(t, file)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			golden := strings.TrimSuffix(file, ".eml") + ".json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s at line %d:\n%s", file, golden, firstDiffLine(got, want), got)
			}
		})
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

func mustParseFile(tb testing.TB, file string) *feedback.Report {
	tb.Helper()
	f, err := os.Open(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rep, err := feedback.Parse(f)
	if err != nil {
		tb.Fatalf("Parse(%s): %v", file, err)
	}
	return rep
}

// TestParseFixtures checks, for each provider's report, the
// classification, the codes and the correlation keys read back through
// the fixture key.
func TestParseFixtures(t *testing.T) {
	tg := fixtureTagger(t)
	cases := []struct {
		file       string
		typ        feedback.Type
		class      feedback.Class
		status     string
		auth       bool
		recipient  string
		ref        feedback.Ref
		sentToRef  bool // the report's To carries the return path
		feedbackID string
	}{
		{"gmail-5.1.1.eml", feedback.DeliveryStatus, feedback.Hard, "5.1.1", false, "nosuchuser@gmail.com", feedback.Ref{SendID: 7, SubscriberID: 1}, true, "2026-01:monthly:newsletter:tayori"},
		{"outlook-5.1.10.eml", feedback.DeliveryStatus, feedback.Hard, "5.1.10", false, "nobody-here@outlook.jp", feedback.Ref{SendID: 7, SubscriberID: 2}, true, "2026-01:monthly:newsletter:tayori"},
		{"postfix-4.4.1.eml", feedback.DeliveryStatus, feedback.Soft, "4.4.1", false, "reader-3@docomo.ne.jp", feedback.Ref{SendID: 7, SubscriberID: 3}, true, "2026-01:monthly:newsletter:tayori"},
		{"gmail-5.7.26.eml", feedback.DeliveryStatus, feedback.Policy, "5.7.26", true, "reader-4@gmail.com", feedback.Ref{SendID: 7, SubscriberID: 4}, true, "2026-01:monthly:newsletter:tayori"},
		{"outlook-5.7.515.eml", feedback.DeliveryStatus, feedback.Policy, "5.7.515", true, "reader-5@hotmail.com", feedback.Ref{SendID: 7, SubscriberID: 5}, true, "2026-01:monthly:newsletter:tayori"},
		{"yahoo-552-notfound.eml", feedback.DeliveryStatus, feedback.Hard, "5.0.0", false, "reader-6@yahoo.com", feedback.Ref{SendID: 7, SubscriberID: 6}, true, "2026-01:monthly:newsletter:tayori"},
		{"yahoo-delayed.eml", feedback.DeliveryStatus, feedback.Delayed, "4.7.0", false, "reader-7@aol.com", feedback.Ref{SendID: 7, SubscriberID: 7}, true, "2026-01:monthly:newsletter:tayori"},
		{"yahoo-arf-abuse.eml", feedback.FeedbackReport, feedback.Complaint, "abuse", false, "", feedback.Ref{SendID: 7, SubscriberID: 8}, false, "2026-01:monthly:newsletter:tayori"},
		{"yahoo-arf-redacted.eml", feedback.FeedbackReport, feedback.Complaint, "abuse", false, "", feedback.Ref{SendID: 9, SubscriberID: 5}, false, "2026-02:monthly:newsletter:tayori"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			rep := mustParseFile(t, filepath.Join("testdata", c.file))
			if rep.Type != c.typ || rep.Key == "" || rep.MessageID == "" {
				t.Fatalf("type %q, key %q, message-id %q", rep.Type, rep.Key, rep.MessageID)
			}
			switch c.typ {
			case feedback.DeliveryStatus:
				if len(rep.Recipients) != 1 {
					t.Fatalf("%d recipients", len(rep.Recipients))
				}
				r := rep.Recipients[0]
				if r.Class != c.class || r.Status != c.status || r.Auth != c.auth || r.FinalRecipient != c.recipient || r.Action == "" || r.DiagnosticCode == "" {
					t.Errorf("recipient = %+v; want class %s, status %s, auth %v, final recipient %s", r, c.class, c.status, c.auth, c.recipient)
				}
			case feedback.FeedbackReport:
				a := rep.ARF
				if a.Class != c.class || a.FeedbackType != c.status || a.ArrivalDate.IsZero() || len(a.ReportedDomain) != 1 || a.ReportedDomain[0] != fixtureDomain {
					t.Errorf("ARF = %+v", a)
				}
				if strings.Contains(rep.Original.To, "@") {
					t.Errorf("the fixture's To should be redacted: %q", rep.Original.To)
				}
			}
			if rep.Original.FeedbackID != c.feedbackID || rep.Original.ListID != "AI政策動向 <monthly.news.example.go.jp>" {
				t.Errorf("original: %+v", rep.Original)
			}
			if got, err := tg.RefFromMessageID(rep.Original.MessageID); err != nil || got != c.ref {
				t.Errorf("RefFromMessageID(%q) = %v, %v; want %v", rep.Original.MessageID, got, err, c.ref)
			}
			var fromTo feedback.Ref
			for _, a := range rep.SentTo {
				if r, err := tg.RefFromAddress(a); err == nil {
					fromTo = r
				}
			}
			if c.sentToRef && fromTo != c.ref {
				t.Errorf("return path in %v gives %v, want %v", rep.SentTo, fromTo, c.ref)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	big := bytes.Repeat([]byte("x"), feedback.MaxReportSize+1)
	copy(big, "Subject: big\r\n\r\n")
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty", nil, feedback.ErrMalformed},
		{"not a message", readFile(t, "testdata/bad/not-a-message.eml"), feedback.ErrMalformed},
		{"out-of-office reply to the return path", readFile(t, "testdata/bad/out-of-office.eml"), feedback.ErrNotReport},
		{"daemon notice with no reply code", []byte("From: MAILER-DAEMON@example.net\r\nSubject: Undelivered Mail\r\n\r\nYour mailbox is almost full.\r\n"), feedback.ErrNotReport},
		{"plain text that is not a bounce", []byte("From: someone@example.net\r\nSubject: hello\r\n\r\n550 reasons to subscribe\r\n"), feedback.ErrNotReport},
		{"truncated before the report part", readFile(t, "testdata/bad/truncated.eml"), feedback.ErrNotReport},
		{"multipart without boundary", []byte("Content-Type: multipart/report; report-type=delivery-status\r\n\r\nx"), feedback.ErrMalformed},
		{"delivery-status naming nobody", []byte("Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n--b--\r\n"), feedback.ErrMalformed},
		{"over the size limit", big, feedback.ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := feedback.Parse(bytes.NewReader(c.input))
			if !errors.Is(err, c.want) || rep != nil {
				t.Fatalf("Parse = %v, %v; want %v", rep, err, c.want)
			}
		})
	}
	// Exactly at the limit is still read.
	atLimit := append(readFile(t, "testdata/gmail-5.1.1.eml"), '\n')
	atLimit = append(atLimit, bytes.Repeat([]byte(" "), feedback.MaxReportSize-len(atLimit))...)
	if _, err := feedback.Parse(bytes.NewReader(atLimit)); err != nil {
		t.Errorf("a report of exactly MaxReportSize bytes: %v", err)
	}
}

// TestParseIsLenient: damage that real MTAs produce does not lose the
// report: LF line ends, an mbox "From " line, a base64 delivery-status
// part, field names in odd case, stray lines.
func TestParseIsLenient(t *testing.T) {
	dsn := "Reporting-MTA: dns; mx.example.net\n\nfinal-recipient: RFC822; <Someone@Example.NET>\nACTION: Failed\nthis line is damage\nstatus: 5.0.0 (unknown)\ndiagnostic-code: smtp; 550 5.1.1 <someone@example.net>: Recipient address rejected\n"
	msg := "From MAILER-DAEMON Tue Feb  3 09:00:00 2026\n" +
		"From: MAILER-DAEMON@example.net\nTo: b+x@bounce.news.example.go.jp\nMessage-ID: <r1@example.net>\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"zz\"\n\n" +
		"--zz\nContent-Type: text/plain\n\nhello\n--zz\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n" +
		base64Lines(dsn) + "--zz--\n"
	rep, err := feedback.Parse(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Recipients[0]
	if r.FinalRecipient != "Someone@Example.NET" || r.Action != "failed" || r.Status != "5.1.1" || r.Class != feedback.Hard {
		t.Errorf("recipient = %+v", r)
	}
	if rep.From != "MAILER-DAEMON@example.net" || rep.MessageID != "r1@example.net" || len(rep.SentTo) != 1 {
		t.Errorf("report = %+v", rep)
	}
}

func base64Lines(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n")
	return b.String()
}

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestParsePlainText reads the plain-text bounces of qmail, Exim and a
// code-only notice: class, status, the failed address, and the tokens of
// the bounce address and of the returned message's headers.
func TestParsePlainText(t *testing.T) {
	tg := fixtureTagger(t)
	cases := []struct {
		file, status, recipient string
		class                   feedback.Class
		ref                     feedback.Ref // by the bounce address; zero for none
		original                bool         // the returned message's headers follow the notice
	}{
		{"qmail-5.1.1.eml", "5.1.1", "reader-10@example.net", feedback.Hard, feedback.Ref{SendID: 7, SubscriberID: 10}, true},
		{"exim-5.1.1.eml", "5.1.1", "reader-11@example.org", feedback.Hard, feedback.Ref{SendID: 7, SubscriberID: 11}, true},
		{"exim-delayed.eml", "4.3.0", "reader-12@example.org", feedback.Delayed, feedback.Ref{SendID: 7, SubscriberID: 12}, false},
		{"plain-554-notvalid.eml", "", "someone@example.net", feedback.Hard, feedback.Ref{}, false},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			rep := mustParseFile(t, filepath.Join("testdata", c.file))
			if rep.Type != feedback.DeliveryStatus || !rep.PlainText || len(rep.Recipients) != 1 {
				t.Fatalf("type %q, plain text %v, %d recipients", rep.Type, rep.PlainText, len(rep.Recipients))
			}
			r := rep.Recipients[0]
			if r.Class != c.class || r.Status != c.status || r.FinalRecipient != c.recipient || r.DiagnosticCode == "" {
				t.Errorf("recipient %+v; want class %s, status %q, recipient %s", r, c.class, c.status, c.recipient)
			}
			var byAddr feedback.Ref
			for _, a := range rep.SentTo {
				if ref, err := tg.RefFromAddress(a); err == nil {
					byAddr = ref
				}
			}
			if byAddr != c.ref {
				t.Errorf("bounce address %v gives %v, want %v", rep.SentTo, byAddr, c.ref)
			}
			if !c.original {
				if rep.Original != (feedback.Original{}) {
					t.Errorf("original %+v from a notice without the message", rep.Original)
				}
				return
			}
			if got, err := tg.RefFromMessageID(rep.Original.MessageID); err != nil || got != c.ref {
				t.Errorf("returned Message-ID %q gives %v, %v; want %v", rep.Original.MessageID, got, err, c.ref)
			}
			if ref, err := tg.RefFromAddress(rep.Original.ReturnPath); err != nil || ref != c.ref {
				t.Errorf("returned Return-Path %q gives %v, %v", rep.Original.ReturnPath, ref, err)
			}
			if rep.Original.ListID != "AI政策動向 <monthly.news.example.go.jp>" || rep.Original.FeedbackID == "" {
				t.Errorf("original %+v", rep.Original)
			}
		})
	}
	// RFC 3464 reports are not plain text, even with a text/plain part.
	if rep := mustParseFile(t, "testdata/postfix-4.4.1.eml"); rep.PlainText {
		t.Error("a multipart/report DSN was read as a plain-text bounce")
	}
}
