package feedback_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/subscribers"
)

func ingestFile(t *testing.T, in *feedback.Intake, file string) feedback.Outcome {
	t.Helper()
	rep := mustParseFile(t, filepath.Join("testdata", file))
	out, err := in.Ingest(context.Background(), rep, "")
	if err != nil {
		t.Fatalf("Ingest(%s): %v", file, err)
	}
	return out
}

func status(t *testing.T, s *subscribers.Store, id int64) subscribers.Subscriber {
	t.Helper()
	sub, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func suppressed(t *testing.T, s *subscribers.Store, id int64) bool {
	t.Helper()
	ok, err := s.IsSuppressed(context.Background(), status(t, s, id).Email)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func countEvents(t *testing.T, s *subscribers.Store) int {
	t.Helper()
	evs, err := s.FeedbackEvents(context.Background(), subscribers.FeedbackQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestIngestFixtures applies every provider's report to a real store:
// checklist 34 (hard, soft, policy) and 35 (complaints with a redacted
// recipient), then ingests them all again and checks nothing changes.
func TestIngestFixtures(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, 8)
	h := newHistory()
	h.sent(7, 1, 2, 3, 4, 5, 6, 7, 8)
	h.sent(9, 5)
	in := newIntake(t, store, h, false)

	cases := []struct {
		file       string
		class      feedback.Class
		reader     int64
		matchedBy  string
		action     string
		wantStatus subscribers.Status
		suppressed bool
	}{
		{"gmail-5.1.1.eml", feedback.Hard, 1, "return-path", "marked bounced", subscribers.Bounced, true},
		{"outlook-5.1.10.eml", feedback.Hard, 2, "return-path", "marked bounced", subscribers.Bounced, true},
		{"postfix-4.4.1.eml", feedback.Soft, 3, "return-path", "soft bounce recorded (1 in a row of 3)", subscribers.Active, false},
		{"gmail-5.7.26.eml", feedback.Policy, 0, "", "alert: authentication refusal", subscribers.Active, false},
		{"outlook-5.7.515.eml", feedback.Policy, 0, "", "alert: authentication refusal", subscribers.Active, false},
		{"yahoo-552-notfound.eml", feedback.Hard, 6, "return-path", "marked bounced", subscribers.Bounced, true},
		{"yahoo-delayed.eml", feedback.Delayed, 0, "", "recorded", subscribers.Active, false},
		{"yahoo-arf-abuse.eml", feedback.Complaint, 8, "return-path", "marked complained", subscribers.Complained, true},
		{"yahoo-arf-redacted.eml", feedback.Complaint, 5, "message-id", "marked complained", subscribers.Complained, true},
	}
	for _, c := range cases {
		out := ingestFile(t, in, c.file)
		if out.Duplicate || len(out.Results) != 1 {
			t.Fatalf("%s: outcome %+v", c.file, out)
		}
		r := out.Results[0]
		if r.Class != c.class || !strings.HasPrefix(r.Action, c.action) {
			t.Errorf("%s: result %+v; want class %s, action %q", c.file, r, c.class, c.action)
		}
		if c.reader != 0 && (r.Ref.SubscriberID != c.reader || r.MatchedBy != c.matchedBy) {
			t.Errorf("%s: matched %v by %q; want reader %d by %s", c.file, r.Ref, r.MatchedBy, c.reader, c.matchedBy)
		}
	}
	// The readers as the reports left them. Reader 4 and 5 drew
	// authentication refusals and stay active (5 complained later, through
	// a report that named them only by the token in its Message-ID).
	for _, c := range cases {
		if c.reader == 0 {
			continue
		}
		sub := status(t, store, c.reader)
		if sub.Status != c.wantStatus || suppressed(t, store, c.reader) != c.suppressed {
			t.Errorf("reader %d after %s: %s, suppressed %v; want %s, %v", c.reader, c.file, sub.Status, suppressed(t, store, c.reader), c.wantStatus, c.suppressed)
		}
		if c.class == feedback.Complaint && len(sub.Lists) != 0 {
			t.Errorf("reader %d complained but is still on %v", c.reader, sub.Lists)
		}
	}
	for _, id := range []int64{3, 4, 7} {
		if sub := status(t, store, id); sub.Status != subscribers.Active || !sub.Sendable(subscribers.DefaultList) || suppressed(t, store, id) {
			t.Errorf("reader %d must be left alone: %+v", id, sub)
		}
	}
	hist, err := store.History(ctx, 1)
	if err != nil || !strings.Contains(hist[len(hist)-1].Cause, "5.1.1") || strings.Contains(hist[len(hist)-1].Cause, "nosuchuser") {
		t.Errorf("history of reader 1: %+v, %v; want the status code and no address", hist, err)
	}

	// The events: one per report, no addresses.
	evs, err := store.FeedbackEvents(ctx, subscribers.FeedbackQuery{})
	if err != nil || len(evs) != len(cases) {
		t.Fatalf("%d events, %v; want %d", len(evs), err, len(cases))
	}
	var auth int
	for _, e := range evs {
		if e.Auth {
			auth++
		}
		if strings.Contains(e.Detail, "reader-") || strings.Contains(e.Detail, "nosuchuser@") || strings.Contains(e.Detail, "nobody-here@") {
			t.Errorf("event %d keeps an address: %q", e.ID, e.Detail)
		}
	}
	if auth != 2 {
		t.Errorf("%d authentication refusals recorded, want 2", auth)
	}

	// Idempotent: the same reports again change nothing.
	before := countEvents(t, store)
	h1 := status(t, store, 1)
	for _, c := range cases {
		if out := ingestFile(t, in, c.file); !out.Duplicate || len(out.Results) != 0 {
			t.Errorf("%s ingested twice: %+v", c.file, out)
		}
	}
	if after := countEvents(t, store); after != before {
		t.Errorf("events %d → %d after ingesting again", before, after)
	}
	if hist2, _ := store.History(ctx, 1); len(hist2) != len(hist) || status(t, store, 1).UpdatedAt != h1.UpdatedAt {
		t.Errorf("reader 1 changed on the second ingestion")
	}
}

// softDSN is a Postfix DSN for one copy (a 4.x.x failure after retries),
// its Message-ID unique per (send, reader).
func softDSN(tg *feedback.Tagger, ref feedback.Ref, code string) []byte {
	return []byte(fmt.Sprintf(`From: MAILER-DAEMON@mta.news.example.go.jp (Mail Delivery System)
To: %[1]s
Subject: Undelivered Mail Returned to Sender
Message-Id: <dsn-%[2]d-%[3]d@mta.news.example.go.jp>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mta.news.example.go.jp

Final-Recipient: rfc822; reader@example.jp
Action: failed
Status: %[4]s
Diagnostic-Code: smtp; 452 %[4]s Mailbox full

--B--
`, tg.ReturnPath(ref), ref.SendID, ref.SubscriberID, code))
}

func ingestBytes(t *testing.T, in *feedback.Intake, b []byte) feedback.Result {
	t.Helper()
	rep, err := feedback.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := in.Ingest(context.Background(), rep, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 1 {
		t.Fatalf("outcome %+v", out)
	}
	return out.Results[0]
}

// TestSoftBounceStreak: three soft bounces on the reader's last three
// sends suppress the address; a send in between that drew no report (so
// was delivered) breaks the streak; copies the relay refused temporarily
// until retries ran out count as soft bounces too.
// Plain-text bounces act like DSNs once their token matches: qmail's and
// Exim's hard bounces mark their readers bounced; a delay changes nothing.
func TestIngestPlainTextBounces(t *testing.T) {
	store := openStore(t, 12)
	h := newHistory()
	h.sent(7, 10, 11, 12)
	in := newIntake(t, store, h, false)
	for _, c := range []struct {
		file   string
		reader int64
		want   subscribers.Status
	}{
		{"qmail-5.1.1.eml", 10, subscribers.Bounced},
		{"exim-5.1.1.eml", 11, subscribers.Bounced},
		{"exim-delayed.eml", 12, subscribers.Active},
	} {
		out := ingestFile(t, in, c.file)
		if len(out.Results) != 1 || out.Results[0].Ref.SubscriberID != c.reader || out.Results[0].MatchedBy != "return-path" {
			t.Errorf("%s: %+v", c.file, out)
		}
		if got := status(t, store, c.reader).Status; got != c.want || suppressed(t, store, c.reader) != (c.want == subscribers.Bounced) {
			t.Errorf("%s: reader %d is %s; want %s", c.file, c.reader, got, c.want)
		}
	}
	// No token: recorded, nobody changed (MatchByAddress is off).
	out := ingestFile(t, in, "plain-554-notvalid.eml")
	if len(out.Results) != 1 || out.Results[0].Ref.SubscriberID != 0 {
		t.Errorf("untokenised plain-text bounce: %+v", out)
	}
}

func TestSoftBounceStreak(t *testing.T) {
	tg := fixtureTagger(t)
	t.Run("three in a row", func(t *testing.T) {
		store, h := openStore(t, 1), newHistory()
		in := newIntake(t, store, h, false)
		for i, send := range []int64{3, 4, 5} {
			h.sent(send, 1)
			r := ingestBytes(t, in, softDSN(tg, feedback.Ref{SendID: send, SubscriberID: 1}, "4.2.2"))
			want := subscribers.Active
			if i == 2 {
				want = subscribers.Bounced
				if !strings.Contains(r.Action, "after 3 soft bounces") {
					t.Errorf("third soft bounce: %q", r.Action)
				}
			} else if r.Action != fmt.Sprintf("soft bounce recorded (%d in a row of 3)", i+1) {
				t.Errorf("soft bounce %d: %q", i+1, r.Action)
			}
			if got := status(t, store, 1).Status; got != want {
				t.Fatalf("after soft bounce on send %d: %s, want %s", send, got, want)
			}
		}
		if !suppressed(t, store, 1) {
			t.Error("not suppressed after three soft bounces")
		}
		hist, _ := store.History(context.Background(), 1)
		if c := hist[len(hist)-1].Cause; !strings.Contains(c, "sends 3, 4, 5") {
			t.Errorf("cause %q should name the sends", c)
		}
	})
	t.Run("a delivered send breaks the streak", func(t *testing.T) {
		store, h := openStore(t, 1), newHistory()
		in := newIntake(t, store, h, false)
		h.sent(3, 1)
		ingestBytes(t, in, softDSN(tg, feedback.Ref{SendID: 3, SubscriberID: 1}, "4.2.2"))
		h.sent(4, 1) // no report: delivered
		h.sent(5, 1)
		ingestBytes(t, in, softDSN(tg, feedback.Ref{SendID: 5, SubscriberID: 1}, "4.2.2"))
		h.sent(6, 1)
		r := ingestBytes(t, in, softDSN(tg, feedback.Ref{SendID: 6, SubscriberID: 1}, "5.2.2"))
		if r.Action != "soft bounce recorded (2 in a row of 3)" || status(t, store, 1).Status != subscribers.Active {
			t.Errorf("3 soft bounces on 4 sends, one delivered in between: %q, %s", r.Action, status(t, store, 1).Status)
		}
		// Two reports for the same send count once.
		r = ingestBytes(t, in, bytes.Replace(softDSN(tg, feedback.Ref{SendID: 6, SubscriberID: 1}, "4.4.7"), []byte("<dsn-"), []byte("<again-"), 1))
		if r.Action != "soft bounce recorded (2 in a row of 3)" {
			t.Errorf("a second report for one send: %q", r.Action)
		}
	})
	t.Run("temporary refusals by the relay count", func(t *testing.T) {
		store, h := openStore(t, 1), newHistory()
		in := newIntake(t, store, h, false)
		h.sent(3, 1)
		h.add(1, feedback.Attempt{SendID: 4}) // failed after retries ran out
		h.sent(5, 1)
		ingestBytes(t, in, softDSN(tg, feedback.Ref{SendID: 3, SubscriberID: 1}, "4.4.1"))
		r := ingestBytes(t, in, softDSN(tg, feedback.Ref{SendID: 5, SubscriberID: 1}, "4.4.1"))
		if status(t, store, 1).Status != subscribers.Bounced {
			t.Errorf("soft, temporary refusal, soft: %q, %s", r.Action, status(t, store, 1).Status)
		}
	})
	t.Run("a permanent refusal is not soft", func(t *testing.T) {
		store, h := openStore(t, 1), newHistory()
		in := newIntake(t, store, h, false)
		h.sent(3, 1)
		h.add(1, feedback.Attempt{SendID: 4, Permanent: true}) // e.g. 5.7.1, the sender's fault
		h.sent(5, 1)
		ingestBytes(t, in, softDSN(tg, feedback.Ref{SendID: 3, SubscriberID: 1}, "4.4.1"))
		r := ingestBytes(t, in, softDSN(tg, feedback.Ref{SendID: 5, SubscriberID: 1}, "4.4.1"))
		if status(t, store, 1).Status != subscribers.Active || r.Action != "soft bounce recorded (1 in a row of 3)" {
			t.Errorf("%q, %s", r.Action, status(t, store, 1).Status)
		}
	})
}

// TestIngestUnmatchedAndForged: a report without a valid token changes
// nobody (anyone can mail the bounce address), unless MatchByAddress.
func TestIngestUnmatchedAndForged(t *testing.T) {
	tg := fixtureTagger(t)
	hard := func(to, msgID string) []byte {
		return []byte("From: MAILER-DAEMON@mta.example\nTo: " + to + "\nMessage-Id: <" + msgID + "@mta.example>\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: message/delivery-status\n\n" +
			"Reporting-MTA: dns; mta.example\n\nFinal-Recipient: rfc822; reader-1@example.jp\nAction: failed\nStatus: 5.1.1\n" +
			"Diagnostic-Code: smtp; 550 5.1.1 <reader-1@example.jp>: user unknown\n\n--B--\n")
	}
	good := tg.Token(feedback.Ref{SendID: 7, SubscriberID: 1})
	forged := good[:5] + string("0123456789"[(strings.IndexByte("0123456789abcdefghjkmnpqrstvwxyz", good[5])+1)%10]) + good[6:]
	if forged == good {
		forged = good[:5] + "z" + good[6:]
	}

	store, h := openStore(t, 1), newHistory()
	h.sent(7, 1)
	in := newIntake(t, store, h, false)
	for i, to := range []string{"bounces@news.example.go.jp", "b+" + forged + "@bounce.news.example.go.jp"} {
		r := ingestBytes(t, in, hard(to, fmt.Sprint("u", i)))
		if r.Class != feedback.Hard || r.Ref.SubscriberID != 0 || r.Action != "recorded: no reader matched" {
			t.Errorf("report to %s: %+v", to, r)
		}
	}
	if status(t, store, 1).Status != subscribers.Active {
		t.Fatal("an unmatched or forged report bounced the reader")
	}
	// The envelope recipient given by the MTA is a source too.
	rep, err := feedback.Parse(bytes.NewReader(hard("bounces@news.example.go.jp", "env")))
	if err != nil {
		t.Fatal(err)
	}
	out, err := in.Ingest(context.Background(), rep, "b+"+good+"@bounce.news.example.go.jp")
	if err != nil || out.Results[0].MatchedBy != "return-path" || status(t, store, 1).Status != subscribers.Bounced {
		t.Errorf("envelope recipient: %+v, %v, %s", out, err, status(t, store, 1).Status)
	}

	// MatchByAddress: for mail sent before return paths carried tokens.
	store2, h2 := openStore(t, 1), newHistory()
	h2.sent(7, 1)
	in2 := newIntake(t, store2, h2, true)
	r := ingestBytes(t, in2, hard("bounces@news.example.go.jp", "addr"))
	if r.MatchedBy != "address" || r.Ref.SubscriberID != 1 || status(t, store2, 1).Status != subscribers.Bounced {
		t.Errorf("MatchByAddress: %+v, %s", r, status(t, store2, 1).Status)
	}
}
