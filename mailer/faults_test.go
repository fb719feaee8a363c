package mailer_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
)

// Relay faults: a relay that refuses a recipient and then answers out of
// step, one that closes idle connections, one that stops answering, one
// that is down. Every test sends to the real in-process server and checks
// each reader's outcome against the server's own record of what it
// accepted.

// outcome is what one reader's callback received.
type outcome struct {
	reply mailer.Reply
	err   error
	calls int
}

// ledgerCheck compares each reader's recorded outcome with what the server
// accepted: no reader accepted twice, none accepted but recorded as
// failed, none recorded as sent but not accepted, and a permanent failure
// only for the readers in perm.
func ledgerCheck(t *testing.T, srv *testutil.SMTPServer, rcpts []string, got map[string]*outcome, perm, temp map[string]bool) {
	t.Helper()
	ledgerCheckUnknown(t, srv, rcpts, got, perm, temp, false)
}

// ledgerCheckUnknown is ledgerCheck; with unknownOK a copy whose reply
// was lost with the connection (a temporary *ConnError: its fate is
// unknown, the caller retries it) may have been accepted or not.
func ledgerCheckUnknown(t *testing.T, srv *testutil.SMTPServer, rcpts []string, got map[string]*outcome, perm, temp map[string]bool, unknownOK bool) {
	t.Helper()
	var ce *mailer.ConnError
	accepted := map[string]int{}
	for _, m := range srv.Messages() {
		for _, to := range m.To {
			accepted[to]++
		}
	}
	var falsePerm, dups, acceptedFailed, lost, missing, wrong int
	for _, r := range rcpts {
		o := got[r]
		if o == nil || o.calls != 1 {
			t.Errorf("%s: callback ran %v times, want once", r, o)
			missing++
			continue
		}
		if accepted[r] > 1 {
			dups++
			t.Errorf("%s: accepted %d times", r, accepted[r])
		}
		unknown := unknownOK && errors.As(o.err, &ce) && mailer.IsTemporary(o.err)
		switch {
		case unknown:
		case o.err == nil && accepted[r] == 0:
			lost++
			t.Errorf("%s: recorded as sent (%v) but the relay has no copy", r, o.reply)
		case o.err != nil && accepted[r] > 0:
			acceptedFailed++
			t.Errorf("%s: the relay accepted it but it is recorded as failed: %v", r, o.err)
		case mailer.IsPermanent(o.err) && !perm[r]:
			falsePerm++
			t.Errorf("%s: false permanent failure: %v", r, o.err)
		case perm[r] && !mailer.IsPermanent(o.err):
			wrong++
			t.Errorf("%s: %v, want its own permanent refusal", r, o.err)
		case temp[r] && !mailer.IsTemporary(o.err):
			wrong++
			t.Errorf("%s: %v, want its own temporary refusal", r, o.err)
		case !perm[r] && !temp[r] && o.err != nil:
			wrong++
			t.Errorf("%s: valid reader not delivered: %v", r, o.err)
		}
	}
	t.Logf("%d readers: %d false permanent failures, %d duplicates, %d accepted but failed, %d sent but lost, %d wrong, %d callbacks missing; %d connections",
		len(rcpts), falsePerm, dups, acceptedFailed, lost, wrong, missing, srv.Connections())
}

// startReaders sends one copy to each reader with Conn.Start on one
// pooled connection, as the batch worker does, and returns the outcomes.
func startReaders(t *testing.T, p *mailer.Pool, rcpts []string) map[string]*outcome {
	t.Helper()
	ctx := context.Background()
	b := newBuilder(t, mailer.BuilderOptions{})
	got := make(map[string]*outcome, len(rcpts))
	c, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		built, err := b.Build(fixture(t, r))
		if err != nil {
			t.Fatal(err)
		}
		o := &outcome{}
		got[r] = o
		c.StartBuilt(ctx, envFrom, r, built, func(reply mailer.Reply, err error) {
			o.reply, o.err = reply, err
			o.calls++
		})
	}
	c.Wait(ctx)
	p.Put(c)
	return got
}

// TestStartOutOfStepAfterRefusal: with PIPELINING and CHUNKING, a refused
// recipient makes the relay refuse the BDAT that follows. A relay that
// drains the chunk stays in step; one that reads it as commands answers
// the next readers' commands with its replies to the chunk's lines
// ("501 5.5.2 Bad command"). Only a reader's own refusal may fail that
// reader; the rest are delivered exactly once.
func TestStartOutOfStepAfterRefusal(t *testing.T) {
	modes := []struct {
		name    string
		mode    testutil.RefusedChunk
		noProbe bool // pipeline with chunks without asking the relay first
	}{
		{"drained", testutil.ChunkDrained, false},
		{"as-commands", testutil.ChunkAsCommands, false},
		{"as-commands-no-limit", testutil.ChunkAsCommandsNoLimit, false},
		{"drained/no-probe", testutil.ChunkDrained, true},
		{"as-commands-no-limit/no-probe", testutil.ChunkAsCommandsNoLimit, true},
		{"as-commands/no-probe", testutil.ChunkAsCommands, true},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			perm, temp := map[string]bool{}, map[string]bool{}
			var rcpts []string
			for i := range 240 {
				r := fmt.Sprintf("reader%03d@example.jp", i)
				switch {
				case i%13 == 4:
					r = fmt.Sprintf("gone%03d@example.jp", i)
					perm[r] = true
				case i%29 == 7:
					r = fmt.Sprintf("later%03d@example.jp", i)
					temp[r] = true
				case i%31 == 11:
					r = fmt.Sprintf("full%03d@example.jp", i)
					perm[r] = true
				}
				rcpts = append(rcpts, r)
			}
			// Two refusals in a row, and one at the very end.
			rcpts[100], rcpts[101] = "gone-a@example.jp", "gone-b@example.jp"
			rcpts[len(rcpts)-1] = "gone-z@example.jp"
			perm["gone-a@example.jp"], perm["gone-b@example.jp"], perm["gone-z@example.jp"] = true, true, true
			srv := testutil.StartSMTP(t, testutil.WithRefusedChunk(m.mode),
				testutil.FailFunc(func(rcpt string, _ int) *testutil.Fault {
					switch {
					case strings.HasPrefix(rcpt, "gone"):
						return &testutil.Fault{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
					case strings.HasPrefix(rcpt, "later"):
						return &testutil.Fault{Code: 451, Enhanced: "4.2.0", Text: "try later"}
					case strings.HasPrefix(rcpt, "full"):
						return &testutil.Fault{Code: 552, Enhanced: "5.2.2", Text: "mailbox full", AtData: true}
					}
					return nil
				}))
			p := newPool(t, srv.URL(), mailer.PoolOptions{})
			if m.noProbe {
				mailer.SkipDrainProbe(p)
			}
			got := startReaders(t, p, rcpts)
			// A relay that hangs up on the chunk's lines resets the
			// connection with replies unread: those copies' fates are
			// unknown, and reported so (temporary), never as failed.
			unknownOK := m.mode == testutil.ChunkAsCommands && m.noProbe
			ledgerCheckUnknown(t, srv, rcpts, got, perm, temp, unknownOK)
			if m.noProbe && m.mode != testutil.ChunkDrained && srv.UndrainedChunks() == 0 {
				t.Error("the server never left a refused chunk unread: the test proves nothing")
			}
			if undrained := m.mode != testutil.ChunkDrained; mailer.Undrained(p) != undrained {
				t.Errorf("the pool found the relay undrained: %v, want %v", mailer.Undrained(p), undrained)
			}
			for r := range perm {
				var ce *mailer.ConnError
				if unknownOK && errors.As(got[r].err, &ce) {
					continue
				}
				if strings.HasPrefix(r, "gone") && !mailer.IsBadMailbox(got[r].err) {
					t.Errorf("%s: %v, want a bad mailbox", r, got[r].err)
				}
			}
		})
	}
}

// TestIdleClosedConnectionRedialled: a connection the relay closed while
// it sat idle (with "421 4.4.2 Idle timeout" first, or silently) is a
// dead connection, not a failed delivery: the copies written to it go
// again on a new connection, at once, and none fails.
func TestIdleClosedConnectionRedialled(t *testing.T) {
	for _, say421 := range []bool{true, false} {
		for _, how := range []string{"pipelined", "from-pool", "noop-check"} {
			t.Run(fmt.Sprintf("421=%v/%s", say421, how), func(t *testing.T) {
				srv := testutil.StartSMTP(t, testutil.WithIdleTimeout(300*time.Millisecond, say421))
				opts := mailer.PoolOptions{}
				if how == "noop-check" {
					opts.IdleCheck = 100 * time.Millisecond
				}
				p := newPool(t, srv.URL(), opts)
				ctx := context.Background()
				b := newBuilder(t, mailer.BuilderOptions{})
				c, err := p.Get(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var rcpts []string
				got := map[string]*outcome{}
				start := func(r string) {
					built, err := b.Build(fixture(t, r))
					if err != nil {
						t.Fatal(err)
					}
					o := &outcome{}
					got[r] = o
					rcpts = append(rcpts, r)
					c.StartBuilt(ctx, envFrom, r, built, func(reply mailer.Reply, err error) {
						o.reply, o.err = reply, err
						o.calls++
					})
				}
				for i := range 3 {
					start(fmt.Sprintf("before%d@example.jp", i))
				}
				c.Wait(ctx)
				if how != "pipelined" {
					p.Put(c)
				}
				// The relay drops the connection while it is idle.
				deadline := time.Now().Add(5 * time.Second)
				for srv.IdleDrops() == 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if srv.IdleDrops() == 0 {
					t.Fatal("the relay did not drop the idle connection")
				}
				drops := srv.IdleDrops()          // one, unless a slow machine let the first connection idle earlier
				time.Sleep(20 * time.Millisecond) // the FIN (and the 421) reach the client
				if how != "pipelined" {
					if c, err = p.Get(ctx); err != nil {
						t.Fatal(err)
					}
				}
				began := time.Now()
				for i := range 40 {
					start(fmt.Sprintf("after%02d@example.jp", i))
				}
				c.Wait(ctx)
				p.Put(c)
				if d := time.Since(began); d > 2*time.Second {
					t.Errorf("the copies after the drop took %v", d)
				}
				ledgerCheck(t, srv, rcpts, got, nil, nil)
				if srv.Connections() != drops+1 {
					t.Errorf("%d connections after %d idle drops, want one re-dial per drop", srv.Connections(), drops)
				}
			})
		}
	}
}

// stateLog collects the breaker's reports.
type stateLog struct {
	mu     sync.Mutex
	states []mailer.RelayState
}

func (l *stateLog) add(st mailer.RelayState) {
	l.mu.Lock()
	l.states = append(l.states, st)
	l.mu.Unlock()
}

func (l *stateLog) all() []mailer.RelayState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]mailer.RelayState(nil), l.states...)
}

// TestRelayNeverAnswers: a relay that accepts connections and never
// greets costs GreetingTimeout per dial until the breaker opens; then
// dials fail at once, with an error that says the relay is unavailable,
// until a probe after the cool-down finds it back.
func TestRelayNeverAnswers(t *testing.T) {
	srv := testutil.StartSMTP(t)
	var log stateLog
	p := newPool(t, srv.URL(), mailer.PoolOptions{GreetingTimeout: 500 * time.Millisecond,
		BreakerThreshold: 2, BreakerCooldown: 300 * time.Millisecond, OnRelayState: log.add})
	ctx := context.Background()
	srv.Hang()
	for i := range 2 {
		start := time.Now()
		_, err := p.Get(ctx)
		if !errors.Is(err, mailer.ErrRelayUnavailable) || !mailer.IsTemporary(err) || mailer.IsPermanent(err) {
			t.Fatalf("dial %d: %v, want a temporary relay-unavailable error", i, err)
		}
		if !strings.Contains(err.Error(), "no greeting within 500ms") {
			t.Errorf("dial %d: %v, want it to say no greeting came", i, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("dial %d took %v: the greeting timeout did not bound it", i, d)
		}
	}
	// Open: fail fast, without dialling.
	conns := srv.Connections()
	_, err := p.Get(ctx)
	var ue *mailer.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, mailer.ErrRelayUnavailable) || !mailer.IsTemporary(err) {
		t.Fatalf("breaker open: %v (%T), want an *UnavailableError", err, err)
	}
	if srv.Connections() != conns {
		t.Error("the open breaker let a dial through")
	}
	states := log.all()
	if len(states) != 1 || states[0].Up || states[0].Kind != "timeout" || states[0].Since.IsZero() ||
		!strings.Contains(states[0].Cause, "greeting") {
		t.Fatalf("relay states %+v, want one: down, timeout", states)
	}

	if err := srv.Restore(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond) // the cool-down
	c, err := p.Get(ctx)
	if err != nil {
		t.Fatalf("after the relay came back: %v", err)
	}
	if _, err := c.Send(ctx, envFrom, "a@example.jp", buildFor(t, "a@example.jp")); err != nil {
		t.Fatal(err)
	}
	p.Put(c)
	states = log.all()
	if len(states) != 2 || !states[1].Up {
		t.Errorf("relay states %+v, want down then up", states)
	}
}

// TestRelayRefusesConnections: a refused connection is tried again at
// once, and the threshold's worth of refusals opens the breaker; a
// half-open probe that fails opens it again.
func TestRelayRefusesConnections(t *testing.T) {
	srv := testutil.StartSMTP(t)
	var log stateLog
	p := newPool(t, srv.URL(), mailer.PoolOptions{BreakerThreshold: 3, BreakerCooldown: time.Second, OnRelayState: log.add})
	ctx := context.Background()
	srv.Refuse()
	var unavailable int
	for range 6 {
		_, err := p.Get(ctx)
		if !errors.Is(err, mailer.ErrRelayUnavailable) || mailer.IsPermanent(err) {
			t.Fatalf("relay down: %v, want relay unavailable", err)
		}
		var ue *mailer.UnavailableError
		if errors.As(err, &ue) {
			unavailable++
			if !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("breaker error %q does not say why", err)
			}
		}
	}
	if unavailable != 5 {
		t.Errorf("%d of 6 Gets failed fast, want 5 (the first tried 3 times and opened the breaker)", unavailable)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := p.Get(ctx); err == nil { // the probe: still refused
		t.Fatal("probe connected to a refusing relay")
	}
	if _, err := p.Get(ctx); !errors.As(err, new(*mailer.UnavailableError)) {
		t.Errorf("after a failed probe: %v, want the breaker open again", err)
	}
	states := log.all()
	if len(states) != 2 || states[0].Up || states[1].Up || states[0].Kind != "refused" || states[0].Cause != "connection refused" ||
		!states[1].Retry.After(states[0].Retry) || !states[1].Since.Equal(states[0].Since) {
		t.Errorf("relay states %+v, want two down reports (open, failed probe) since the first refusal", states)
	}
}

// TestRelayStopsAnsweringMidStream: a relay that stops answering with
// copies in flight: the wait for their replies is bounded by
// DataTimeout; they fail as temporary (their fate is unknown), none as
// permanent, and what the relay accepted before is recorded as sent.
func TestRelayStopsAnsweringMidStream(t *testing.T) {
	srv := testutil.StartSMTP(t)
	p := newPool(t, srv.URL(), mailer.PoolOptions{DataTimeout: 300 * time.Millisecond, GreetingTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	b := newBuilder(t, mailer.BuilderOptions{})
	c, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*outcome{}
	var rcpts []string
	var start time.Time
	for i := range 60 {
		if i == 20 {
			start = time.Now()
			c.Wait(ctx)
			srv.Hang()
		}
		r := fmt.Sprintf("reader%02d@example.jp", i)
		rcpts = append(rcpts, r)
		o := &outcome{}
		got[r] = o
		built, err := b.Build(fixture(t, r))
		if err != nil {
			t.Fatal(err)
		}
		c.StartBuilt(ctx, envFrom, r, built, func(reply mailer.Reply, err error) { o.reply, o.err = reply, err; o.calls++ })
	}
	c.Wait(ctx)
	p.Put(c)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the copies took %v with the relay silent", d)
	}
	var failed int
	for _, r := range rcpts[20:] {
		if err := got[r].err; err != nil {
			failed++
			if !mailer.IsTemporary(err) || mailer.IsPermanent(err) {
				t.Errorf("%s: %v, want temporary", r, err)
			}
		}
	}
	if failed == 0 {
		t.Error("no copy failed although the relay stopped answering")
	}
	ledgerCheckUnknown(t, srv, rcpts, got, nil, nil, true)
}

// TestStartManyRefusals: 1,200 readers, one in ten refused with a 4xx at
// RCPT, one in a hundred with a 5xx, one in a hundred at the end of the
// data, against each kind of relay: every reader's outcome matches the
// relay's record of what it accepted.
func TestStartManyRefusals(t *testing.T) {
	const n = 1200
	perm, temp := map[string]bool{}, map[string]bool{}
	kind := func(rcpt string) int {
		h := fnv.New32a()
		h.Write([]byte(rcpt))
		return int(h.Sum32() % 100)
	}
	var rcpts []string
	for i := range n {
		r := fmt.Sprintf("r%04d@example.jp", i)
		switch k := kind(r); {
		case k < 10:
			temp[r] = true
		case k < 12:
			perm[r] = true
		}
		rcpts = append(rcpts, r)
	}
	fault := testutil.FailFunc(func(rcpt string, _ int) *testutil.Fault {
		switch k := kind(rcpt); {
		case k < 10:
			return &testutil.Fault{Code: 451, Enhanced: "4.3.0", Text: "try later"}
		case k < 11:
			return &testutil.Fault{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
		case k < 12:
			return &testutil.Fault{Code: 554, Enhanced: "5.6.0", Text: "content refused", AtData: true}
		}
		return nil
	})
	for _, m := range []struct {
		name    string
		mode    testutil.RefusedChunk
		noProbe bool
	}{
		{"drained", testutil.ChunkDrained, false},
		{"as-commands", testutil.ChunkAsCommands, false},
		{"as-commands-no-limit/no-probe", testutil.ChunkAsCommandsNoLimit, true},
	} {
		t.Run(m.name, func(t *testing.T) {
			srv := testutil.StartSMTP(t, testutil.WithRefusedChunk(m.mode), fault)
			p := newPool(t, srv.URL(), mailer.PoolOptions{})
			if m.noProbe {
				mailer.SkipDrainProbe(p)
			}
			ledgerCheck(t, srv, rcpts, startReaders(t, p, rcpts), perm, temp)
		})
	}
}
