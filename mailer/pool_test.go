package mailer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
)

const envFrom = "bounce@bounce.news.example.go.jp"

func newPool(tb testing.TB, url string, opts mailer.PoolOptions) *mailer.Pool {
	tb.Helper()
	cfg, err := mailer.ParseSMTPURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := mailer.NewPool(cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

func buildFor(tb testing.TB, rcpt string) []byte {
	tb.Helper()
	b := newBuilder(tb, mailer.BuilderOptions{})
	built, err := b.Build(fixture(tb, rcpt))
	if err != nil {
		tb.Fatal(err)
	}
	return built.Raw
}

func TestSendManyOverOneConnection(t *testing.T) {
	for name, opts := range transferModes {
		t.Run(name, func(t *testing.T) { testSendManyOverOneConnection(t, opts) })
	}
}

func testSendManyOverOneConnection(t *testing.T, opts mailer.PoolOptions) {
	srv := testutil.StartSMTP(t)
	pool := newPool(t, srv.URL(), opts)
	ctx := context.Background()
	conn, err := pool.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	raws := make([][]byte, n)
	for i := range n {
		rcpt := fmt.Sprintf("reader%d@example.jp", i)
		raws[i] = buildFor(t, rcpt)
		reply, err := conn.Send(ctx, envFrom, rcpt, raws[i])
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprintf("250 2.0.0 Ok: queued as %d", i+1); reply.String() != want {
			t.Errorf("reply %q, want %q", reply, want)
		}
	}
	pool.Put(conn)
	msgs := srv.WaitFor(n, 5*time.Second)
	if srv.Connections() != 1 || pool.Dials() != 1 {
		t.Errorf("connections: server %d, pool dials %d; want 1", srv.Connections(), pool.Dials())
	}
	for i, m := range msgs {
		if string(m.Raw) != string(raws[i]) {
			t.Errorf("message %d: received bytes differ from sent bytes", i)
		}
		if m.From != envFrom || len(m.To) != 1 || m.To[0] != fmt.Sprintf("reader%d@example.jp", i) {
			t.Errorf("message %d: envelope %s -> %v", i, m.From, m.To)
		}
		testutil.CheckMessage(t, m.Raw, testutil.MessageWant{FromEmail: fromEmail, Now: time.Now(), To: m.To[0]})
	}
	// The pooled connection is reused by the next Get.
	c2, err := pool.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Send(ctx, envFrom, "again@example.jp", raws[0]); err != nil {
		t.Fatal(err)
	}
	pool.Put(c2)
	if srv.Connections() != 1 {
		t.Errorf("Get after Put dialled again: %d connections", srv.Connections())
	}
}

func TestSendConcurrentOneConnPerGoroutine(t *testing.T) {
	srv := testutil.StartSMTP(t)
	pool := newPool(t, srv.URL(), mailer.PoolOptions{})
	raw := buildFor(t, "x@example.jp")
	const workers, per = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*per)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pool.Get(context.Background())
			if err != nil {
				errs <- err
				return
			}
			defer pool.Put(c)
			for i := range per {
				if _, err := c.Send(context.Background(), envFrom, fmt.Sprintf("w%d-%d@example.jp", w, i), raw); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	srv.WaitFor(workers*per, 5*time.Second)
	if got := srv.Connections(); got != workers {
		t.Errorf("%d connections for %d goroutines", got, workers)
	}
}

func TestSendRedialsAfterDrop(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.FailRcpt("drop@example.jp", testutil.Drop()))
	pool := newPool(t, srv.URL(), mailer.PoolOptions{})
	ctx := context.Background()
	conn, err := pool.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Put(conn)
	raw := buildFor(t, "a@example.jp")
	if _, err := conn.Send(ctx, envFrom, "a@example.jp", raw); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Send(ctx, envFrom, "drop@example.jp", raw)
	var ce *mailer.ConnError
	if !errors.As(err, &ce) || !mailer.IsTemporary(err) || mailer.IsPermanent(err) {
		t.Fatalf("dropped connection: err %v (%T), want temporary *ConnError", err, err)
	}
	if ce.Stage != mailer.StageRcpt {
		t.Errorf("stage %q, want rcpt", ce.Stage)
	}
	// The same Conn re-dials and carries on.
	if _, err := conn.Send(ctx, envFrom, "b@example.jp", raw); err != nil {
		t.Fatalf("after drop: %v", err)
	}
	srv.WaitFor(2, 5*time.Second)
	if srv.Connections() != 2 {
		t.Errorf("%d connections, want 2 (one re-dial)", srv.Connections())
	}
}

// TestSendRedialsDeadIdleConnection: a pooled connection the server closed
// meanwhile is replaced transparently (nothing had been sent on it).
func TestSendRedialsDeadIdleConnection(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.FailRcpt("drop@example.jp", testutil.Fault{Drop: true, AtData: true}))
	pool := newPool(t, srv.URL(), mailer.PoolOptions{IdleCheck: time.Nanosecond})
	ctx := context.Background()
	raw := buildFor(t, "a@example.jp")
	conn, err := pool.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Send(ctx, envFrom, "a@example.jp", raw); err != nil {
		t.Fatal(err)
	}
	// Drop at DATA: the message was not accepted, the error is temporary.
	if _, err := conn.Send(ctx, envFrom, "drop@example.jp", raw); !mailer.IsTemporary(err) {
		t.Fatalf("drop at DATA: %v", err)
	}
	if _, err := conn.Send(ctx, envFrom, "c@example.jp", raw); err != nil {
		t.Fatalf("after drop at DATA: %v", err)
	}
	pool.Put(conn)
	if n := len(srv.MessagesTo("drop@example.jp")); n != 0 {
		t.Errorf("dropped message recorded %d times", n)
	}
}

// transferModes are the ways a Conn can send: PIPELINING and CHUNKING
// (BDAT) on or off. The test server offers both.
var transferModes = map[string]mailer.PoolOptions{
	"pipelined-bdat":  {},
	"pipelined-data":  {NoChunking: true},
	"sequential-bdat": {NoPipelining: true},
	"sequential-data": {NoPipelining: true, NoChunking: true},
}

func TestSendClassifiesReplies(t *testing.T) {
	for name, opts := range transferModes {
		t.Run(name, func(t *testing.T) { testClassifiesReplies(t, opts) })
	}
}

func testClassifiesReplies(t *testing.T, opts mailer.PoolOptions) {
	srv := testutil.StartSMTP(t,
		testutil.FailRcpt("full@example.jp", testutil.Reply(452, "4.2.2", "Mailbox full")),
		testutil.FailRcpt("greylist@example.jp", testutil.Reply(451, "4.7.1", "Greylisted, try again")),
		testutil.FailRcpt("unknown@example.jp", testutil.Reply(550, "5.1.1", "No such user")),
		testutil.FailRcpt("noenh@example.jp", testutil.Fault{Code: 550, Enhanced: "", Text: "no"}),
		testutil.FailRcpt("dmarc@example.jp", testutil.Reply(550, "5.7.26", "Unauthenticated email is not accepted")),
		testutil.FailRcpt("spam@example.jp", testutil.Fault{Code: 554, Enhanced: "5.7.1", Text: "Message rejected as spam", AtData: true}),
		testutil.FailRcpt("tempdata@example.jp", testutil.Fault{Code: 421, Enhanced: "4.3.0", Text: "closing", AtData: true}),
	)
	pool := newPool(t, srv.URL(), opts)
	ctx := context.Background()
	conn, err := pool.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Put(conn)
	raw := buildFor(t, "x@example.jp")
	cases := []struct {
		rcpt                              string
		code                              int
		enhanced, stage                   string
		temporary, permanent, bad, policy bool
	}{
		{"full@example.jp", 452, "4.2.2", mailer.StageRcpt, true, false, false, false},
		{"greylist@example.jp", 451, "4.7.1", mailer.StageRcpt, true, false, false, false},
		{"unknown@example.jp", 550, "5.1.1", mailer.StageRcpt, false, true, true, false},
		{"dmarc@example.jp", 550, "5.7.26", mailer.StageRcpt, false, true, false, true},
		{"spam@example.jp", 554, "5.7.1", mailer.StageData, false, true, false, true},
		{"tempdata@example.jp", 421, "4.3.0", mailer.StageData, true, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.rcpt, func(t *testing.T) {
			_, err := conn.Send(ctx, envFrom, tc.rcpt, raw)
			var se *mailer.SMTPError
			if !errors.As(err, &se) {
				t.Fatalf("err %v (%T), want *SMTPError", err, err)
			}
			if se.Code != tc.code || se.Enhanced != tc.enhanced || se.Stage != tc.stage {
				t.Errorf("got %d %q at %q, want %d %q at %q", se.Code, se.Enhanced, se.Stage, tc.code, tc.enhanced, tc.stage)
			}
			if mailer.IsTemporary(err) != tc.temporary || mailer.IsPermanent(err) != tc.permanent ||
				mailer.IsBadMailbox(err) != tc.bad || mailer.IsPolicy(err) != tc.policy {
				t.Errorf("classified temporary=%v permanent=%v bad=%v policy=%v",
					mailer.IsTemporary(err), mailer.IsPermanent(err), mailer.IsBadMailbox(err), mailer.IsPolicy(err))
			}
			if se.Message == "" || strings.Contains(se.Message, tc.enhanced) {
				t.Errorf("message %q should be the text without the enhanced code", se.Message)
			}
			// The connection carries the next message.
			if _, err := conn.Send(ctx, envFrom, "ok@example.jp", raw); err != nil {
				t.Fatalf("next message after %s: %v", tc.rcpt, err)
			}
		})
	}
	// go-smtp always adds an enhanced code, so "550 without one" is checked
	// on the classifier directly (TestClassifiers).
	if got := len(srv.MessagesTo("ok@example.jp")); got != len(cases) {
		t.Errorf("%d follow-up messages delivered, want %d", got, len(cases))
	}
}

func TestSendFailThenSucceed(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.FailRcptTimes("r@example.jp", 2, testutil.Reply(451, "4.3.0", "try later")))
	pool := newPool(t, srv.URL(), mailer.PoolOptions{})
	raw := buildFor(t, "r@example.jp")
	var errs []error
	for range 3 {
		_, err := pool.Send(context.Background(), envFrom, "r@example.jp", raw)
		errs = append(errs, err)
	}
	if !mailer.IsTemporary(errs[0]) || !mailer.IsTemporary(errs[1]) || errs[2] != nil {
		t.Fatalf("errors %v, want temp, temp, nil", errs)
	}
	if n := len(srv.MessagesTo("r@example.jp")); n != 1 {
		t.Errorf("%d messages delivered, want exactly 1", n)
	}
}

func TestSendSlowServerHonoursContext(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.FailRcpt("slow@example.jp", testutil.Slow(3*time.Second)))
	pool := newPool(t, srv.URL(), mailer.PoolOptions{})
	raw := buildFor(t, "slow@example.jp")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := pool.Send(ctx, envFrom, "slow@example.jp", raw)
	if err == nil || !mailer.IsTemporary(err) {
		t.Fatalf("err %v, want a temporary timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send returned after %v; the context deadline was not honoured", elapsed)
	}
}

func TestSendSlowServerWithinDeadline(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.FailRcpt("slow@example.jp", testutil.Slow(100*time.Millisecond)))
	pool := newPool(t, srv.URL(), mailer.PoolOptions{})
	if _, err := pool.Send(context.Background(), envFrom, "slow@example.jp", buildFor(t, "slow@example.jp")); err != nil {
		t.Fatal(err)
	}
}

func TestSendSTARTTLSWithAuth(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.WithSTARTTLS(), testutil.WithAuth("tayori", "s3cr3t pass"))
	if !strings.HasPrefix(srv.URL(), "smtp://tayori:s3cr3t%20pass@127.0.0.1:") || !strings.HasSuffix(srv.URL(), "?tls=starttls") {
		t.Fatalf("URL %q", srv.URL())
	}
	pool := newPool(t, srv.URL(), mailer.PoolOptions{TLSConfig: srv.TLSClientConfig()})
	for i := range 3 {
		if _, err := pool.Send(context.Background(), envFrom, fmt.Sprintf("t%d@example.jp", i), buildFor(t, "t@example.jp")); err != nil {
			t.Fatal(err)
		}
	}
	srv.WaitFor(3, 5*time.Second)
	if srv.Connections() != 1 {
		t.Errorf("%d connections, want 1", srv.Connections())
	}
}

func TestSendSTARTTLSUntrustedCertFails(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.WithSTARTTLS())
	pool := newPool(t, srv.URL(), mailer.PoolOptions{}) // system roots: self-signed cert refused
	_, err := pool.Send(context.Background(), envFrom, "a@example.jp", buildFor(t, "a@example.jp"))
	if err == nil {
		t.Fatal("untrusted certificate accepted")
	}
	if len(srv.Messages()) != 0 {
		t.Error("message delivered over an untrusted connection")
	}
}

func TestSendSTARTTLSRequiredButMissing(t *testing.T) {
	srv := testutil.StartSMTP(t) // no STARTTLS offered
	url := strings.Replace(srv.URL(), "?tls=none", "", 1)
	pool := newPool(t, url, mailer.PoolOptions{})
	_, err := pool.Send(context.Background(), envFrom, "a@example.jp", buildFor(t, "a@example.jp"))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("err %v, want a STARTTLS error", err)
	}
}

func TestSendImplicitTLS(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.WithImplicitTLS(), testutil.WithAuth("u", "p"))
	if !strings.HasPrefix(srv.URL(), "smtps://") {
		t.Fatalf("URL %q", srv.URL())
	}
	pool := newPool(t, srv.URL(), mailer.PoolOptions{TLSConfig: srv.TLSClientConfig()})
	if _, err := pool.Send(context.Background(), envFrom, "a@example.jp", buildFor(t, "a@example.jp")); err != nil {
		t.Fatal(err)
	}
}

func TestSendAuthPlainWithoutTLSOnLoopback(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.WithAuth("u", "p"))
	pool := newPool(t, srv.URL(), mailer.PoolOptions{})
	if _, err := pool.Send(context.Background(), envFrom, "a@example.jp", buildFor(t, "a@example.jp")); err != nil {
		t.Fatal(err)
	}
}

func TestSendAuthFailureIsPolicy(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.WithAuth("u", "right"))
	url := strings.Replace(srv.URL(), "u:right@", "u:wrong@", 1)
	pool := newPool(t, url, mailer.PoolOptions{})
	_, err := pool.Send(context.Background(), envFrom, "a@example.jp", buildFor(t, "a@example.jp"))
	var se *mailer.SMTPError
	if !errors.As(err, &se) || se.Stage != mailer.StageConnect || se.Code != 535 {
		t.Fatalf("err %v (%T), want 535 at connect", err, err)
	}
	if !mailer.IsPolicy(err) || mailer.IsBadMailbox(err) {
		t.Errorf("bad credentials: policy=%v badmailbox=%v", mailer.IsPolicy(err), mailer.IsBadMailbox(err))
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestSendRefusesBadEnvelope(t *testing.T) {
	srv := testutil.StartSMTP(t)
	pool := newPool(t, srv.URL(), mailer.PoolOptions{})
	for _, rcpt := range []string{"a@example.jp>\r\nRCPT TO:<b@example.jp", "", "no-at"} {
		_, err := pool.Send(context.Background(), envFrom, rcpt, []byte("x\r\n"))
		if !errors.Is(err, mailer.ErrInvalidMessage) || !strings.Contains(err.Error(), "envelope rcpt") {
			t.Errorf("rcpt %q: err %v", rcpt, err)
		}
	}
	if srv.Connections() != 0 {
		t.Errorf("dialled %d times for invalid envelopes", srv.Connections())
	}
}

type countingLimiter struct{ n atomic.Int64 }

func (l *countingLimiter) Wait(ctx context.Context) error { l.n.Add(1); return ctx.Err() }

type countingSlots struct{ acquired, released atomic.Int64 }

func (s *countingSlots) Acquire(context.Context) (func(), error) {
	s.acquired.Add(1)
	return func() { s.released.Add(1) }, nil
}

type fullSlots struct{}

func (fullSlots) Acquire(context.Context) (func(), error) { return nil, errors.New("no slot") }

func TestPoolHooks(t *testing.T) {
	srv := testutil.StartSMTP(t, testutil.FailRcpt("drop@example.jp", testutil.Drop()))
	lim, slots := &countingLimiter{}, &countingSlots{}
	pool := newPool(t, srv.URL(), mailer.PoolOptions{Limiter: lim, Slots: slots, MaxMessagesPerConn: 3})
	raw := buildFor(t, "a@example.jp")
	c, err := pool.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := c.Send(context.Background(), envFrom, fmt.Sprintf("m%d@example.jp", i), raw); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.Send(context.Background(), envFrom, "drop@example.jp", raw)
	pool.Put(c)
	_ = pool.Close()
	if lim.n.Load() != 8 {
		t.Errorf("limiter waited %d times, want 8", lim.n.Load())
	}
	// 7 messages at 3 per connection: 3 connections; the drop happened on
	// the third, which then closed. Every slot acquired is released.
	if slots.acquired.Load() != 3 || slots.released.Load() != 3 {
		t.Errorf("slots acquired %d released %d, want 3/3", slots.acquired.Load(), slots.released.Load())
	}
	if srv.Connections() != 3 {
		t.Errorf("%d connections, want 3", srv.Connections())
	}
	if pool.Open() != 0 {
		t.Errorf("%d connections still open after Close", pool.Open())
	}

	// A limiter that refuses stops the send before any SMTP.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	pool2 := newPool(t, srv.URL(), mailer.PoolOptions{Limiter: lim})
	c2, err := pool2.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Send(cctx, envFrom, "x@example.jp", raw); !errors.Is(err, context.Canceled) || !mailer.IsTemporary(err) {
		t.Errorf("cancelled limiter: %v", err)
	}
	pool2.Put(c2)

	pool3 := newPool(t, srv.URL(), mailer.PoolOptions{Slots: fullSlots{}})
	if _, err := pool3.Get(context.Background()); err == nil || !strings.Contains(err.Error(), "no slot") {
		t.Errorf("full slots: %v", err)
	}
}

func TestPoolClosed(t *testing.T) {
	srv := testutil.StartSMTP(t)
	pool := newPool(t, srv.URL(), mailer.PoolOptions{})
	_ = pool.Close()
	if _, err := pool.Get(context.Background()); !errors.Is(err, mailer.ErrPoolClosed) {
		t.Errorf("Get after Close: %v", err)
	}
}

func TestClassifiers(t *testing.T) {
	cases := []struct {
		name                              string
		err                               error
		temporary, permanent, bad, policy bool
	}{
		{"550 rcpt no enhanced", &mailer.SMTPError{Code: 550, Stage: mailer.StageRcpt}, false, true, true, false},
		{"553 rcpt no enhanced", &mailer.SMTPError{Code: 553, Stage: mailer.StageRcpt}, false, true, true, false},
		{"554 rcpt no enhanced", &mailer.SMTPError{Code: 554, Stage: mailer.StageRcpt}, false, true, false, false},
		{"550 mail no enhanced", &mailer.SMTPError{Code: 550, Stage: mailer.StageMail}, false, true, false, false},
		{"5.1.1 at data", &mailer.SMTPError{Code: 550, Enhanced: "5.1.1", Stage: mailer.StageData}, false, true, true, false},
		{"5.1.7 sender", &mailer.SMTPError{Code: 553, Enhanced: "5.1.7", Stage: mailer.StageRcpt}, false, true, false, false},
		{"5.1.1 at mail", &mailer.SMTPError{Code: 550, Enhanced: "5.1.1", Stage: mailer.StageMail}, false, true, false, false},
		{"5.7.26", &mailer.SMTPError{Code: 550, Enhanced: "5.7.26", Stage: mailer.StageData}, false, true, false, true},
		{"535 no enhanced", &mailer.SMTPError{Code: 535, Stage: mailer.StageConnect}, false, true, false, true},
		{"4.7.0", &mailer.SMTPError{Code: 421, Enhanced: "4.7.0", Stage: mailer.StageConnect}, true, false, false, false},
		{"conn", &mailer.ConnError{Stage: mailer.StageData, Err: errors.New("reset")}, true, false, false, false},
		{"wrapped", fmt.Errorf("deliver: %w", &mailer.SMTPError{Code: 550, Enhanced: "5.1.1", Stage: mailer.StageRcpt}), false, true, true, false},
		{"deadline", context.DeadlineExceeded, true, false, false, false},
		{"invalid", &mailer.ValidationError{}, false, false, false, false},
		{"nil", nil, false, false, false, false},
	}
	for _, tc := range cases {
		if mailer.IsTemporary(tc.err) != tc.temporary || mailer.IsPermanent(tc.err) != tc.permanent ||
			mailer.IsBadMailbox(tc.err) != tc.bad || mailer.IsPolicy(tc.err) != tc.policy {
			t.Errorf("%s: temporary=%v permanent=%v bad=%v policy=%v", tc.name,
				mailer.IsTemporary(tc.err), mailer.IsPermanent(tc.err), mailer.IsBadMailbox(tc.err), mailer.IsPolicy(tc.err))
		}
	}
}

// TestSendDotStuffing: raw bytes that are not in canonical form (lines
// starting with '.', bare LF) go through the dot-stuffing writer and arrive
// intact; canonical ones are written as is.
func TestSendDotStuffing(t *testing.T) {
	for name, opts := range transferModes {
		t.Run(name, func(t *testing.T) { testDotStuffing(t, opts) })
	}
}

func testDotStuffing(t *testing.T, opts mailer.PoolOptions) {
	srv := testutil.StartSMTP(t)
	pool := newPool(t, srv.URL(), opts)
	cases := []struct{ raw, want string }{
		{"Subject: a\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n", "Subject: a\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n"},
		{"Subject: b\n\nbare LF\n", "Subject: b\r\n\r\nbare LF\r\n"},
		{"Subject: c\r\n\r\nno final newline", "Subject: c\r\n\r\nno final newline\r\n"},
		{"Subject: d\r\n\r\ncanonical\r\n", "Subject: d\r\n\r\ncanonical\r\n"},
	}
	for i, tc := range cases {
		if _, err := pool.Send(context.Background(), envFrom, "a@example.jp", []byte(tc.raw)); err != nil {
			t.Fatal(err)
		}
		got := srv.WaitFor(i+1, 5*time.Second)[i]
		if string(got.Raw) != tc.want {
			t.Errorf("case %d: received %q, want %q", i, got.Raw, tc.want)
		}
	}
	if srv.Connections() != 1 {
		t.Errorf("%d connections", srv.Connections())
	}
}

// TestSendRedialsAfterRelayClosedIdleConnection: the relay closed the idle
// connection (restart, idle timeout); the next Send notices at MAIL FROM,
// before anything was accepted, re-dials once and delivers.
func TestSendRedialsAfterRelayClosedIdleConnection(t *testing.T) {
	modes := map[string]mailer.PoolOptions{"noop-check": {IdleCheck: time.Nanosecond}}
	for name, opts := range transferModes {
		modes[name] = opts
	}
	for name, opts := range modes {
		t.Run(name, func(t *testing.T) {
			srv := testutil.StartSMTP(t)
			pool := newPool(t, srv.URL(), opts)
			ctx := context.Background()
			raw := buildFor(t, "a@example.jp")
			conn, err := pool.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Put(conn)
			if _, err := conn.Send(ctx, envFrom, "a@example.jp", raw); err != nil {
				t.Fatal(err)
			}
			if n := srv.DropConnections(); n != 1 {
				t.Fatalf("dropped %d connections", n)
			}
			if _, err := conn.Send(ctx, envFrom, "b@example.jp", raw); err != nil {
				t.Fatalf("after the relay closed the connection: %v", err)
			}
			if srv.Connections() != 2 || pool.Dials() != 2 {
				t.Errorf("server connections %d, pool dials %d; want 2", srv.Connections(), pool.Dials())
			}
			if len(srv.WaitFor(2, 5*time.Second)) != 2 {
				t.Error("messages missing")
			}
		})
	}
}
