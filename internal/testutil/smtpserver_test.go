package testutil_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
)

// send speaks SMTP with net/smtp (an independent client) and returns the
// error of the first refused step.
func send(t *testing.T, addr string, tlsCfg *tls.Config, auth smtp.Auth, from, to string, body string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tlsCfg != nil {
		if err := c.StartTLS(tlsCfg); err != nil {
			return err
		}
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func TestSMTPServerRecords(t *testing.T) {
	srv := testutil.StartSMTP(t)
	if !strings.HasPrefix(srv.URL(), "smtp://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "?tls=none") {
		t.Errorf("URL %q", srv.URL())
	}
	body := "Subject: 件名\r\n\r\n.dot line\r\n本文\r\n"
	if err := send(t, srv.Addr(), nil, nil, "a@example.jp", "b@example.jp", body); err != nil {
		t.Fatal(err)
	}
	msgs := srv.WaitFor(1, 5*time.Second)
	m := msgs[0]
	if m.From != "a@example.jp" || len(m.To) != 1 || m.To[0] != "b@example.jp" {
		t.Errorf("envelope %q -> %q", m.From, m.To)
	}
	if string(m.Raw) != body {
		t.Errorf("raw %q, want %q", m.Raw, body)
	}
	if m.Received.IsZero() || m.Conn != 1 || srv.Connections() != 1 {
		t.Errorf("received %v conn %d connections %d", m.Received, m.Conn, srv.Connections())
	}
}

func TestSMTPServerRemoteAndWithoutBodies(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.WithoutBodies())
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := "Subject: s\r\n\r\nbody\r\n"
	for _, to := range []string{"b@example.jp", "c@example.jp"} {
		if err := c.Mail("a@example.jp"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt(to); err != nil {
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.WaitFor(2, 5*time.Second)
	if ids := srv.OpenConnectionIDs(); len(ids) != 1 || ids[0] != msgs[0].Conn {
		t.Errorf("open connections %v, want [%d]", ids, msgs[0].Conn)
	}
	// The client's local address is the server's remote one: net/smtp
	// does not show its connection, so compare the two messages and the
	// form of the address instead.
	if msgs[0].Remote == "" || msgs[0].Remote != msgs[1].Remote || !strings.HasPrefix(msgs[0].Remote, "127.0.0.1:") {
		t.Errorf("remote addresses %q, %q: want the same 127.0.0.1:PORT", msgs[0].Remote, msgs[1].Remote)
	}
	for _, m := range msgs {
		if m.Raw != nil || m.Size != len(body) {
			t.Errorf("raw %q size %d, want no bytes kept and size %d", m.Raw, m.Size, len(body))
		}
	}
	c.Quit()
	for deadline := time.Now().Add(5 * time.Second); len(srv.OpenConnectionIDs()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("open connections %v after QUIT", srv.OpenConnectionIDs())
		}
	}
}

func TestSMTPServerFaults(t *testing.T) {
	srv := testutil.StartSMTP(t,
		testutil.FailRcpt("temp@example.jp", testutil.Reply(451, "4.7.1", "greylisted")),
		testutil.FailRcpt("perm@example.jp", testutil.Reply(550, "5.1.1", "no such user")),
		testutil.FailRcpt("dmarc@example.jp", testutil.Reply(550, "5.7.26", "DMARC")),
		testutil.FailRcpt("data@example.jp", testutil.Fault{Code: 554, Enhanced: "5.7.1", Text: "spam", AtData: true}),
		testutil.FailRcptTimes("twice@example.jp", 2, testutil.Reply(421, "4.3.0", "busy")),
		testutil.FailFunc(func(rcpt string, _ int) *testutil.Fault {
			if strings.HasPrefix(rcpt, "func-") {
				return &testutil.Fault{Code: 552, Enhanced: "5.2.2", Text: "mailbox full"}
			}
			return nil
		}),
	)
	cases := []struct{ rcpt, want string }{
		{"temp@example.jp", "451 4.7.1 greylisted"},
		{"perm@example.jp", "550 5.1.1 no such user"},
		{"dmarc@example.jp", "550 5.7.26 DMARC"},
		{"data@example.jp", "554 5.7.1 spam"},
		{"func-x@example.jp", "552 5.2.2 mailbox full"},
		{"twice@example.jp", "421 4.3.0 busy"},
		{"twice@example.jp", "421 4.3.0 busy"},
		{"twice@example.jp", ""},
		{"ok@example.jp", ""},
	}
	for _, tc := range cases {
		err := send(t, srv.Addr(), nil, nil, "a@example.jp", tc.rcpt, "Subject: x\r\n\r\nx\r\n")
		got := ""
		var te *textproto.Error
		if errors.As(err, &te) {
			got = fmt.Sprintf("%d %s", te.Code, te.Msg)
		} else if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.rcpt, got, tc.want)
		}
	}
	if srv.Attempts("twice@example.jp") != 3 {
		t.Errorf("attempts %d", srv.Attempts("twice@example.jp"))
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("%d messages recorded, want 2 (refused ones are not recorded)", n)
	}
}

func TestSMTPServerDropAndSlow(t *testing.T) {
	srv := testutil.StartSMTP(t,
		testutil.FailRcpt("drop@example.jp", testutil.Drop()),
		testutil.FailRcpt("slow@example.jp", testutil.Slow(150*time.Millisecond)),
	)
	err := send(t, srv.Addr(), nil, nil, "a@example.jp", "drop@example.jp", "x\r\n")
	if err == nil {
		t.Fatal("dropped connection reported success")
	}
	start := time.Now()
	if err := send(t, srv.Addr(), nil, nil, "a@example.jp", "slow@example.jp", "x\r\n"); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Error("slow fault did not delay the reply")
	}
	// Wait for the server to notice both closed connections.
	deadline := time.Now().Add(5 * time.Second)
	for srv.OpenConnections() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if srv.Connections() != 2 || srv.OpenConnections() != 0 {
		t.Errorf("connections %d open %d", srv.Connections(), srv.OpenConnections())
	}
}

func TestSMTPServerRandomFaultsRepeatable(t *testing.T) {
	run := func(seed uint64) []bool {
		srv := testutil.StartSMTP(t, testutil.FailRandom(seed, 0.3, testutil.Reply(451, "4.3.0", "random")))
		var failed []bool
		for i := range 40 {
			err := send(t, srv.Addr(), nil, nil, "a@example.jp", fmt.Sprintf("r%d@example.jp", i), "x\r\n")
			failed = append(failed, err != nil)
		}
		return failed
	}
	a, b, c := run(7), run(7), run(8)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("same seed gave different faults")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Error("different seeds gave the same faults")
	}
	n := 0
	for _, f := range a {
		if f {
			n++
		}
	}
	if n == 0 || n == len(a) {
		t.Errorf("%d of %d failed with p=0.3", n, len(a))
	}
}

func TestSMTPServerAuthAndTLS(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.WithSTARTTLS(), testutil.WithAuth("user", "pass"))
	cfg := srv.TLSClientConfig()
	if err := send(t, srv.Addr(), cfg, smtp.PlainAuth("", "user", "wrong", "127.0.0.1"), "a@example.jp", "b@example.jp", "x\r\n"); err == nil {
		t.Error("wrong password accepted")
	}
	if err := send(t, srv.Addr(), cfg, nil, "a@example.jp", "b@example.jp", "x\r\n"); err == nil || !strings.Contains(err.Error(), "authenticate") {
		t.Errorf("unauthenticated MAIL: %v", err)
	}
	if err := send(t, srv.Addr(), cfg, smtp.PlainAuth("", "user", "pass", "127.0.0.1"), "a@example.jp", "b@example.jp", "x\r\n"); err != nil {
		t.Fatal(err)
	}
	if len(srv.WaitFor(1, 5*time.Second)) != 1 {
		t.Error("message not recorded")
	}
	if srv.Connections() != 3 {
		t.Errorf("%d connections, want 3 (STARTTLS must not count twice)", srv.Connections())
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func check(t *testing.T, raw []byte, want testutil.MessageWant) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testutil.CheckMessage(r, raw, want)
	}()
	<-done
	return r.errors
}

// TestCheckMessageCatchesFaults proves CheckMessage can fail: each broken
// message is reported under the right checklist item.
func TestCheckMessageCatchesFaults(t *testing.T) {
	now := time.Date(2026, 2, 3, 9, 0, 0, 0, time.UTC)
	b, err := mailer.NewBuilder(mailer.BuilderOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	built, err := b.Build(&mailer.Message{
		From:           mailer.Address{Name: "AI政策動向", Email: "newsletter@news.example.go.jp"},
		To:             mailer.Address{Email: "taro@example.jp"},
		Subject:        "【2026年2月号】AI政策動向",
		ListID:         "ai-policy-monthly.news.example.go.jp",
		UnsubscribeURL: "https://news.example.go.jp/u/TOKEN",
		FeedbackID:     "2026-02:monthly:aipolicy:jpaipol01",
		Text:           "本文\n",
		HTML:           "<p>本文</p>\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := testutil.MessageWant{
		FromEmail: "newsletter@news.example.go.jp", FromName: "AI政策動向", To: "taro@example.jp",
		Subject: "【2026年2月号】AI政策動向", Now: now, ListID: "ai-policy-monthly.news.example.go.jp",
		FeedbackID: "2026-02:monthly:aipolicy:jpaipol01", Text: "本文\n", HTML: "<p>本文</p>\n",
	}
	if errs := check(t, built.Raw, want); len(errs) != 0 {
		t.Fatalf("valid message reported: %v", errs)
	}
	raw := string(built.Raw)
	replace := func(old, new string) []byte {
		if !strings.Contains(raw, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return []byte(strings.Replace(raw, old, new, 1))
	}
	cases := []struct {
		name string
		raw  []byte
		want testutil.MessageWant
		item string
	}{
		{"two Subjects", replace("\r\nTo: ", "\r\nSubject: again\r\nTo: "), want, "checklist 1:"},
		{"Message-ID off domain", replace("@news.example.go.jp>\r\nSubject", "@host.local>\r\nSubject"), want, "checklist 2:"},
		{"stale Date", replace("Date: Tue, 03 Feb 2026", "Date: Tue, 03 Feb 2025"), want, "checklist 3:"},
		{"bare LF", []byte(strings.Replace(raw, "\r\n\r\n", "\n\r\n", 1)), want, "checklist 4:"},
		{"long header", replace("\r\nTo: ", "\r\nX-Long: "+strings.Repeat("x", 90)+"\r\nTo: "), want, "checklist 5:"},
		{"wrong From name", built.Raw, func() testutil.MessageWant { w := want; w.FromName = "別名"; return w }(), "checklist 7:"},
		{"wrong Subject", built.Raw, func() testutil.MessageWant { w := want; w.Subject = "違う"; return w }(), "checklist 6:"},
		{"text changed", built.Raw, func() testutil.MessageWant { w := want; w.Text = "別の本文\n"; return w }(), "checklist 8:"},
		{"no Auto-Submitted", replace("Auto-Submitted: auto-generated", "X-Auto: auto-generated"), want, "checklist 10:"},
		{"bad Feedback-ID", replace("jpaipol01", "x"), func() testutil.MessageWant { w := want; w.FeedbackID = ""; return w }(), "checklist 11:"},
		{"http unsubscribe", replace("<https://news.example.go.jp/u/TOKEN>", "<http://news.example.go.jp/u/TOKEN>"), want, "checklist 12:"},
		{"no One-Click", replace("List-Unsubscribe=One-Click", "List-Unsubscribe=Yes"), want, "checklist 13:"},
		{"List-Id off domain", replace("<ai-policy-monthly.news.example.go.jp>", "<ai-policy-monthly.example.com>"), want, "checklist 16:"},
		{"no DKIM", built.Raw, func() testutil.MessageWant {
			w := want
			w.DKIM = &testutil.DKIMWant{Domain: "example.go.jp", Selector: "s", TXT: "v=DKIM1; p="}
			return w
		}(), "checklist 14:"},
	}
	for _, tc := range cases {
		errs := check(t, tc.raw, tc.want)
		found := false
		for _, e := range errs {
			if strings.HasPrefix(e, tc.item) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want a %q failure, got %v", tc.name, tc.item, errs)
		}
	}
	// HTML before text (item 8) needs a real reordering of the parts.
	parts := bytes.SplitN(built.Raw, []byte("\r\n--"), 4)
	if len(parts) == 4 {
		swapped := bytes.Join([][]byte{parts[0], parts[2], parts[1], parts[3]}, []byte("\r\n--"))
		swapped = bytes.Replace(swapped, []byte("\r\n\r\n--"), []byte("\r\n\r\n--"), 1)
		if errs := check(t, swapped, want); len(errs) == 0 {
			t.Error("HTML-first message passed")
		}
	}
}
