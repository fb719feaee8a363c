package bind_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/queue/bind"
	"github.com/tayori-news/tayori/subscribers/token"
	"github.com/tayori-news/tayori/templates"
)

// TestSenderLayoutPath: a newsletter copy handed to the Sender as a
// rendered variant and personal values (built from the variant's laid-out
// fixed text) reaches a real SMTP server byte for byte as the same copy
// handed over as whole text and HTML, for readers whose names shift the
// base64 line alignment differently; a reader with bad links is refused
// before anything is sent.
func TestSenderLayoutPath(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartSMTP(t)
	pool := newPool(t, srv)
	b, err := mailer.NewBuilder(mailer.BuilderOptions{
		Now:       func() time.Time { return time.Date(2025, 12, 1, 9, 0, 0, 0, time.UTC) },
		MessageID: func(d string) string { return "fixed-id@" + d },
		Boundary:  func() string { return "tayori_test_boundary" },
	})
	if err != nil {
		t.Fatal(err)
	}
	sender := &bind.Sender{Builder: b, Pool: pool}
	r, err := templates.New(templates.Config{SenderName: "AIセーフティ・インスティテュート",
		PostalAddress: "東京都港区六本木1-1-1", Contact: "https://news.example.go.jp/contact"})
	if err != nil {
		t.Fatal(err)
	}
	issue, err := compose.Load(filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := bind.Renderer{R: r}.Render(ctx, issue, audience.All())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"", "山田 太郎", "A", "Ab", "<Taro & \"Hanako\">", strings.Repeat("長", 50)}
	for i, name := range names {
		p := queue.Personal{Name: name,
			UnsubscribeURL: "https://news.example.go.jp/u/v1.abcdefghijklmnop" + strings.Repeat("x", i),
			PreferencesURL: "https://news.example.go.jp/p/v1.abcdefghijklmnop"}
		m := queue.Message{From: "AI政策動向 <news@news.example.go.jp>", To: "reader@example.jp", ToName: name,
			Subject: issue.Title, ListID: "ai-policy.news.example.go.jp", ListUnsubscribe: p.UnsubscribeURL,
			FeedbackID: "2025-11:ai-policy:tayori:aisi", Body: rendered, Personal: p}
		whole := m
		whole.Body = nil
		if whole.Text, whole.HTML, err = m.AppendBodies(nil, nil); err != nil {
			t.Fatal(err)
		}
		for _, msg := range []*queue.Message{&m, &whole} {
			if _, err := sender.Send(ctx, msg); err != nil {
				t.Fatalf("%q: %v", name, err)
			}
		}
		got := srv.WaitFor(2*(i+1), 10*time.Second)
		laid, flat := got[2*i].Raw, got[2*i+1].Raw
		if !bytes.Equal(laid, flat) {
			t.Fatalf("name %q: the copy built from the layout differs from the whole-text copy", name)
		}
		// Build (the console's preview) gives the bytes Send hands over.
		built, err := sender.Build(&m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.ReplaceAll(built, []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(laid, []byte("\r\n"), []byte("\n"))) {
			t.Fatalf("name %q: Build differs from the copy sent", name)
		}
		if i == 1 && !bytes.Contains(decodeParts(t, laid), []byte("山田 太郎 様")) {
			t.Error("greeting missing from the delivered copy")
		}
	}
	bad := queue.Message{From: "news@news.example.go.jp", To: "reader@example.jp", Subject: "x", Body: rendered,
		Personal: queue.Personal{UnsubscribeURL: "javascript:alert(1)", PreferencesURL: "https://x.example/p"}}
	if _, err := sender.Send(ctx, &bad); !errors.Is(err, templates.ErrInvalidPersonal) || bind.Classify(err) != queue.Permanent {
		t.Errorf("bad link: %v (class %v), want a permanent ErrInvalidPersonal", err, bind.Classify(err))
	}
	if n := len(srv.Messages()); n != 2*len(names) {
		t.Errorf("%d messages delivered, want %d", n, 2*len(names))
	}
}

// decodeParts returns the decoded text of every part of raw (multipart/
// alternative, base64 parts).
func decodeParts(t *testing.T, raw []byte) []byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
}

// TestSenderTagsCopies (checklist item 37): with a Tagger, a newsletter
// copy leaves with a VERP return path on the bounce subdomain of the From
// domain, and its Message-ID carries the same sealed reference, so a
// bounce or a complaint names the copy; both read back to the send and
// the reader. A test copy (no subscriber) keeps the plain envelope sender
// and gets an untagged Message-ID. Checked on the SMTP server's envelope,
// for the one-at-a-time and the pipelined paths.
func TestSenderTagsCopies(t *testing.T) {
	ctx := context.Background()
	srv, pool, b := senderParts(t)
	tagger, err := feedback.NewTaggerKeys([]token.Key{{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}},
		feedback.TaggerConfig{Domain: "news.example.go.jp"})
	if err != nil {
		t.Fatal(err)
	}
	sender := &bind.Sender{Builder: b, Pool: pool, Tagger: tagger}
	msg := func(sendID, subID int64) *queue.Message {
		return &queue.Message{From: "AI政策動向 <news@news.example.go.jp>", To: "reader@example.jp",
			Subject: "11月号", Text: []byte("本文"), SendID: sendID, SubscriberID: subID}
	}
	if _, err := sender.Send(ctx, msg(7, 1234)); err != nil {
		t.Fatal(err)
	}
	st := sender.Stream()
	for i := range int64(3) {
		st.Send(ctx, msg(8, 5000000000+i), func(_ string, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	st.Close(ctx)
	if _, err := sender.Send(ctx, msg(0, 0)); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(5, 10*time.Second)
	verp := regexp.MustCompile(`^b\+[A-Za-z0-9_-]+@bounce\.news\.example\.go\.jp$`)
	want := []feedback.Ref{{SendID: 7, SubscriberID: 1234}, {SendID: 8, SubscriberID: 5000000000},
		{SendID: 8, SubscriberID: 5000000001}, {SendID: 8, SubscriberID: 5000000002}}
	seen := map[string]bool{}
	for i, w := range want {
		if !verp.MatchString(got[i].From) {
			t.Errorf("copy %d: MAIL FROM %q is not a VERP address on bounce.news.example.go.jp", i, got[i].From)
		}
		if ref, err := tagger.RefFromAddress(got[i].From); err != nil || ref != w {
			t.Errorf("copy %d: return path gives %+v, %v; want %+v", i, ref, err, w)
		}
		m, err := mail.ReadMessage(bytes.NewReader(got[i].Raw))
		if err != nil {
			t.Fatal(err)
		}
		id := m.Header.Get("Message-ID")
		if ref, err := tagger.RefFromMessageID(id); err != nil || ref != w {
			t.Errorf("copy %d: Message-ID %s gives %+v, %v; want %+v", i, id, ref, err, w)
		}
		if seen[id] || !strings.HasSuffix(id, "@news.example.go.jp>") {
			t.Errorf("copy %d: Message-ID %s repeated or not on the From domain", i, id)
		}
		seen[id] = true
	}
	if got[4].From != "news@news.example.go.jp" {
		t.Errorf("test copy: MAIL FROM %q, want the From address", got[4].From)
	}
	m, err := mail.ReadMessage(bytes.NewReader(got[4].Raw))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tagger.RefFromMessageID(m.Header.Get("Message-ID")); err == nil {
		t.Errorf("test copy's Message-ID %s reads as a copy reference", m.Header.Get("Message-ID"))
	}
}

// senderParts starts an SMTP server and returns it with a pool on it and
// a default Builder, the parts of a Sender.
func senderParts(t *testing.T) (*testutil.SMTPServer, *mailer.Pool, *mailer.Builder) {
	t.Helper()
	srv := testutil.StartSMTP(t)
	pool := newPool(t, srv)
	b, err := mailer.NewBuilder(mailer.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, pool, b
}

// newPool returns a mailer pool on srv, closed when the test ends.
func newPool(t *testing.T, srv *testutil.SMTPServer) *mailer.Pool {
	t.Helper()
	relay, err := mailer.ParseSMTPURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := mailer.NewPool(relay, mailer.PoolOptions{HELO: "worker.example.go.jp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// With Bulk, copies that carry a List-Id (newsletter and test copies) get
// "Precedence: bulk"; a message without one (confirmation mail) does not,
// and without Bulk no copy does.
func TestSenderBulk(t *testing.T) {
	ctx := context.Background()
	srv, pool, b := senderParts(t)
	msg := func(listID string) *queue.Message {
		m := &queue.Message{From: "AI政策動向 <news@news.example.go.jp>", To: "reader@example.jp",
			Subject: "11月号", Text: []byte("本文"), ListID: listID}
		if listID != "" {
			m.ListUnsubscribe = "https://news.example.go.jp/u/tok"
		}
		return m
	}
	bulk := &bind.Sender{Builder: b, Pool: pool, Bulk: true}
	plain := &bind.Sender{Builder: b, Pool: pool}
	for _, send := range []func() error{
		func() error { _, err := bulk.Send(ctx, msg("monthly.news.example.go.jp")); return err },
		func() error { _, err := bulk.Send(ctx, msg("")); return err },
		func() error { _, err := plain.Send(ctx, msg("monthly.news.example.go.jp")); return err },
	} {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	got := srv.WaitFor(3, 10*time.Second)
	for i, want := range []string{"bulk", "", ""} {
		m, err := mail.ReadMessage(bytes.NewReader(got[i].Raw))
		if err != nil {
			t.Fatal(err)
		}
		if p := m.Header.Get("Precedence"); p != want {
			t.Errorf("message %d: Precedence %q, want %q", i, p, want)
		}
		if m.Header.Get("Auto-Submitted") != "auto-generated" {
			t.Errorf("message %d: no Auto-Submitted", i)
		}
	}
}

// TestClassifyRelayFaults: a relay that cannot be reached is Unavailable
// (no attempt counted), one that refuses the reader is not.
func TestClassifyRelayFaults(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartSMTP(t, testutil.FailRcpt("gone@example.jp", testutil.Reply(550, "5.1.1", "no such user")),
		testutil.FailRcpt("later@example.jp", testutil.Reply(451, "4.3.0", "try later")))
	pool := newPool(t, srv)
	raw := []byte("Subject: x\r\n\r\nx\r\n")
	for rcpt, want := range map[string]queue.ErrorClass{"gone@example.jp": queue.BadMailbox, "later@example.jp": queue.Temporary} {
		if _, err := pool.Send(ctx, "a@example.jp", rcpt, raw); bind.Classify(err) != want {
			t.Errorf("%s: %v is %v, want %v", rcpt, err, bind.Classify(err), want)
		}
	}
	srv.Refuse()
	for range 5 { // refused, then the breaker open
		if _, err := pool.Send(ctx, "a@example.jp", "b@example.jp", raw); bind.Classify(err) != queue.Unavailable {
			t.Errorf("relay down: %v is %v, want unavailable", err, bind.Classify(err))
		}
	}
}
