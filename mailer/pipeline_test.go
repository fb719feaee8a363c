package mailer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
)

// pooledConn starts an SMTP server with opts and returns it, a pool on it
// and a connection from the pool.
func pooledConn(t *testing.T, opts ...testutil.SMTPOption) (*testutil.SMTPServer, *mailer.Pool, *mailer.Conn) {
	t.Helper()
	srv := testutil.StartSMTP(t, opts...)
	p := newPool(t, srv.URL(), mailer.PoolOptions{})
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return srv, p, c
}

type startResult struct {
	i     int
	reply mailer.Reply
	err   error
}

// startAll sends one message to each rcpt with Conn.Start and returns the
// callbacks' results in the order they were called.
func startAll(t *testing.T, c *mailer.Conn, rcpts []string) []startResult {
	t.Helper()
	ctx := context.Background()
	var got []startResult
	for i, rcpt := range rcpts {
		c.Start(ctx, "newsletter@news.example.go.jp", rcpt, buildFor(t, rcpt), func(r mailer.Reply, err error) {
			got = append(got, startResult{i, r, err})
		})
	}
	c.Wait(ctx)
	if len(got) != len(rcpts) {
		t.Fatalf("%d callbacks for %d messages", len(got), len(rcpts))
	}
	for k, r := range got {
		if r.i != k {
			t.Fatalf("callback %d is for message %d: out of order", k, r.i)
		}
	}
	return got
}

// Messages started back to back on one connection all arrive, intact,
// each with its own reply, callbacks in order.
func TestStartPipelinesMessages(t *testing.T) {
	srv, p, c := pooledConn(t)
	var rcpts []string
	for i := range 25 {
		rcpts = append(rcpts, fmt.Sprintf("reader%02d@example.jp", i))
	}
	got := startAll(t, c, rcpts)
	p.Put(c)
	for i, r := range got {
		if r.err != nil || r.reply.Code != 250 {
			t.Errorf("message %d: %v %v", i, r.reply, r.err)
		}
	}
	msgs := srv.WaitFor(len(rcpts), 5*time.Second)
	for i, m := range msgs {
		if m.To[0] != rcpts[i] || !strings.Contains(string(m.Raw), "\r\nTo: <"+rcpts[i]+">\r\n") {
			t.Errorf("message %d went to %v", i, m.To)
		}
	}
	// Pipelined means Start returned before the replies were read: after
	// the first (synchronous) message, callbacks lag behind.
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for i := range 3 {
		c.Start(context.Background(), "newsletter@news.example.go.jp", "x@example.jp", buildFor(t, "x@example.jp"),
			func(mailer.Reply, error) { calls++ })
		if i == 2 && calls > 1 {
			t.Errorf("after three Starts %d callbacks ran: nothing was pipelined", calls)
		}
	}
	c.Wait(context.Background())
	p.Put(c)
	if calls != 3 {
		t.Errorf("%d callbacks, want 3", calls)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if p.Dials() != 1 {
		t.Errorf("%d dials, want 1", p.Dials())
	}
}

// Start writes a window of PipelineWindow transactions at once and reads
// replies one window behind: the first window is answered only when the
// second has been written, and never more than MaxInFlight are unanswered.
func TestStartReadsOneWindowBehind(t *testing.T) {
	srv, p, c := pooledConn(t)
	ctx := context.Background()
	// The first copy on a connection from the pool goes synchronously.
	calls := 0
	start := func() {
		c.Start(ctx, "newsletter@news.example.go.jp", "x@example.jp", buildFor(t, "x@example.jp"),
			func(r mailer.Reply, err error) {
				if err != nil || r.Code != 250 {
					t.Errorf("copy %d: %v %v", calls, r, err)
				}
				calls++
			})
	}
	start()
	if calls != 1 {
		t.Fatalf("%d callbacks after the first copy, want 1 (it goes synchronously)", calls)
	}
	for i := range mailer.MaxInFlight - 1 {
		start()
		if out := i + 1; out == mailer.PipelineWindow {
			// A full window is written, and the relay can answer it.
			srv.WaitFor(1+mailer.PipelineWindow, 5*time.Second)
		}
		if calls != 1 {
			t.Fatalf("after %d pipelined Starts %d callbacks ran, want 1: replies read before two windows were out", i+1, calls)
		}
	}
	start() // the MaxInFlight-th: both windows out, the first one's replies read
	if want := 1 + mailer.PipelineWindow; calls != want {
		t.Fatalf("with two windows out %d callbacks ran, want %d", calls, want)
	}
	c.Wait(ctx)
	p.Put(c)
	if want := 1 + mailer.MaxInFlight; calls != want || len(srv.Messages()) != want {
		t.Errorf("%d callbacks and %d messages after Wait, want %d", calls, len(srv.Messages()), want)
	}
}

// A refusal in the middle of a pipeline fails that message only: the RSET
// that starts each transaction keeps the next MAIL FROM from meeting an
// open transaction ("nested MAIL").
func TestStartRefusalMidPipeline(t *testing.T) {
	srv, p, c := pooledConn(t,
		testutil.FailRcpt("gone@example.jp", testutil.Reply(550, "5.1.1", "no such user")),
		testutil.FailRcpt("later@example.jp", testutil.Reply(451, "4.3.0", "try later")),
		testutil.FailRcpt("strict@example.jp", testutil.Fault{Code: 554, Enhanced: "5.7.1", Text: "policy", AtData: true}))
	rcpts := []string{"a@example.jp", "b@example.jp", "gone@example.jp", "c@example.jp", "later@example.jp",
		"d@example.jp", "strict@example.jp", "e@example.jp", "f@example.jp"}
	got := startAll(t, c, rcpts)
	p.Put(c)
	for i, r := range got {
		switch rcpts[i] {
		case "gone@example.jp":
			if !mailer.IsBadMailbox(r.err) {
				t.Errorf("%s: %v, want a bad mailbox", rcpts[i], r.err)
			}
		case "later@example.jp":
			if !mailer.IsTemporary(r.err) {
				t.Errorf("%s: %v, want temporary", rcpts[i], r.err)
			}
		case "strict@example.jp":
			if !mailer.IsPolicy(r.err) {
				t.Errorf("%s: %v, want a policy refusal", rcpts[i], r.err)
			}
		default:
			if r.err != nil || r.reply.Code != 250 {
				t.Errorf("%s: %v %v, want accepted", rcpts[i], r.reply, r.err)
			}
		}
	}
	if n := len(srv.WaitFor(6, 5*time.Second)); n != 6 {
		t.Errorf("%d messages delivered, want 6", n)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("%d connections: a refusal broke the pipeline", n)
	}
}

// When the relay drops the connection, every message in flight fails
// with a connection error (temporary: a retry may duplicate at most
// those), and the next Start dials again.
func TestStartConnectionLost(t *testing.T) {
	_, p, c := pooledConn(t, testutil.FailRcpt("drop@example.jp", testutil.Drop()))
	got := startAll(t, c, []string{"a@example.jp", "b@example.jp", "drop@example.jp", "c@example.jp", "d@example.jp"})
	var ce *mailer.ConnError
	for i, r := range got[:2] {
		if r.err != nil {
			t.Errorf("message %d before the drop: %v", i, r.err)
		}
	}
	for i, r := range got[2:] {
		if !errors.As(r.err, &ce) || !mailer.IsTemporary(r.err) {
			t.Errorf("message %d at or after the drop: %v, want a temporary *ConnError", i+2, r.err)
		}
	}
	again := startAll(t, c, []string{"e@example.jp"})
	if again[0].err != nil {
		t.Errorf("after the drop: %v", again[0].err)
	}
	p.Put(c)
	if p.Dials() != 2 {
		t.Errorf("%d dials, want 2 (one after the drop)", p.Dials())
	}
}

// A Conn returned to the pool with replies unread fails those messages
// (their callbacks run) and is closed, not reused out of step.
func TestPutWithOutstanding(t *testing.T) {
	_, p, c := pooledConn(t)
	ctx := context.Background()
	var errs []error
	for _, rcpt := range []string{"a@example.jp", "b@example.jp", "c@example.jp"} {
		c.Start(ctx, "newsletter@news.example.go.jp", rcpt, buildFor(t, rcpt), func(_ mailer.Reply, err error) { errs = append(errs, err) })
	}
	p.Put(c)
	if len(errs) != 3 {
		t.Fatalf("%d callbacks, want 3", len(errs))
	}
	if errs[0] != nil { // the first goes synchronously
		t.Errorf("first message: %v", errs[0])
	}
	for _, err := range errs[1:] {
		if !mailer.IsTemporary(err) {
			t.Errorf("outstanding message: %v, want temporary", err)
		}
	}
	if _, err := p.Send(ctx, "newsletter@news.example.go.jp", "d@example.jp", buildFor(t, "d@example.jp")); err != nil {
		t.Fatal(err)
	}
	if p.Dials() != 2 {
		t.Errorf("%d dials, want 2: the out-of-step connection was reused", p.Dials())
	}
}

// Large messages leave before the window is full (the write buffer is
// bounded) and still arrive whole, each answered in turn.
func TestStartLargeMessages(t *testing.T) {
	srv, p, c := pooledConn(t)
	b := newBuilder(t, mailer.BuilderOptions{})
	var rcpts []string
	var sizes []int
	for i := range 6 {
		m := fixture(t, fmt.Sprintf("big%d@example.jp", i))
		m.Text = strings.Repeat("大きな本文の行です。\n", 6000+i*1000) // 180 KB and up
		built, err := b.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		rcpts = append(rcpts, m.To.Email)
		sizes = append(sizes, len(built.Raw))
		c.StartBuilt(context.Background(), "newsletter@news.example.go.jp", m.To.Email, built, func(r mailer.Reply, err error) {
			if err != nil || r.Code != 250 {
				t.Errorf("message %d: %v %v", i, r, err)
			}
		})
	}
	c.Wait(context.Background())
	p.Put(c)
	msgs := srv.WaitFor(len(rcpts), 10*time.Second)
	for i, m := range msgs {
		if m.To[0] != rcpts[i] || len(m.Raw) != sizes[i] {
			t.Errorf("message %d: to %v, %d bytes, want %s, %d bytes", i, m.To, len(m.Raw), rcpts[i], sizes[i])
		}
	}
}
