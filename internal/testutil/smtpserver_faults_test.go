package testutil_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
)

// rawSession dials srv, reads the greeting and says EHLO.
func rawSession(t *testing.T, srv *testutil.SMTPServer) (net.Conn, *textproto.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	r := textproto.NewReader(bufio.NewReader(nc))
	if _, _, err := r.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if _, err := io.WriteString(nc, "EHLO client.test\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ReadResponse(250); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return nc, r
}

// replyCodes reads n replies and returns their codes.
func replyCodes(t *testing.T, r *textproto.Reader, n int) []int {
	t.Helper()
	var codes []int
	for range n {
		code, _, err := r.ReadResponse(0)
		if err != nil {
			t.Fatalf("after %v: %v", codes, err)
		}
		codes = append(codes, code)
	}
	return codes
}

// A refused chunk of three lines, then a transaction that is accepted:
// a draining relay answers in step; the others answer the chunk's lines
// first, and the one with go-smtp's limit hangs up on the fourth bad
// command.
func TestSMTPServerRefusedChunk(t *testing.T) {
	// Taken for commands, go-smtp answers these lines "501 5.5.2 Bad
	// command", "500 5.5.2 Error: bad syntax" and "500 5.5.2 ... command
	// unrecognized".
	chunk := "Subject: x\r\n\r\nbody\r\n"
	refused := fmt.Sprintf("MAIL FROM:<a@example.jp>\r\nRCPT TO:<gone@example.jp>\r\nBDAT %d LAST\r\n%s", len(chunk), chunk)
	accepted := fmt.Sprintf("RSET\r\nMAIL FROM:<a@example.jp>\r\nRCPT TO:<ok@example.jp>\r\nBDAT %d LAST\r\n%s", len(chunk), chunk)
	for _, tc := range []struct {
		name  string
		mode  testutil.RefusedChunk
		write string
		want  string
	}{
		{"drained", testutil.ChunkDrained, refused + accepted, "[250 550 502 250 250 250 250]"},
		{"as-commands", testutil.ChunkAsCommands, refused + accepted, "[250 550 502 501 500 500 250 250 250 250]"},
		{"no-limit", testutil.ChunkAsCommandsNoLimit, refused + accepted, "[250 550 502 502 502 502 250 250 250 250]"},
		// Four bad lines: go-smtp says "too many errors" and hangs up.
		{"as-commands/hang-up", testutil.ChunkAsCommands, refused + refused, "[250 550 502 501 500 500 250 550 502 501 500]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testutil.StartSMTP(t, testutil.WithRefusedChunk(tc.mode),
				testutil.FailRcpt("gone@example.jp", testutil.Reply(550, "5.1.1", "no such user")))
			nc, r := rawSession(t, srv)
			if _, err := io.WriteString(nc, tc.write); err != nil {
				t.Fatal(err)
			}
			var codes []int
			for {
				code, _, err := r.ReadResponse(0)
				if err != nil {
					break
				}
				codes = append(codes, code)
				if len(codes) == strings.Count(tc.want, " ")+1 {
					break
				}
			}
			if got := fmt.Sprint(codes); got != tc.want {
				t.Errorf("replies %s, want %s", got, tc.want)
			}
			if tc.name == "as-commands/hang-up" {
				if _, _, err := r.ReadResponse(0); !errors.Is(err, io.EOF) {
					t.Errorf("after too many errors: %v, want EOF", err)
				}
				return
			}
			msgs := srv.WaitFor(1, 5*time.Second)
			if len(msgs) != 1 || msgs[0].To[0] != "ok@example.jp" || string(msgs[0].Raw) != chunk {
				t.Errorf("accepted %+v", msgs)
			}
			if want := map[bool]int{true: 0, false: 1}[tc.mode == testutil.ChunkDrained]; srv.UndrainedChunks() != want {
				t.Errorf("%d undrained chunks, want %d", srv.UndrainedChunks(), want)
			}
		})
	}
}

func TestSMTPServerIdleTimeout(t *testing.T) {
	for _, say421 := range []bool{true, false} {
		t.Run(fmt.Sprint("421=", say421), func(t *testing.T) {
			// Generous: a machine loaded by the race detector and other
			// builds (load 15 on 2 cores) must not let the busy phase idle.
			srv := testutil.StartSMTP(t, testutil.WithIdleTimeout(3*time.Second, say421))
			nc, r := rawSession(t, srv)
			// Busy: commands keep the connection open past the timeout.
			for range 4 {
				time.Sleep(100 * time.Millisecond)
				_, _ = io.WriteString(nc, "NOOP\r\n")
				replyCodes(t, r, 1)
			}
			start := time.Now()
			code, _, err := r.ReadResponse(0)
			if say421 {
				if err != nil || code != 421 {
					t.Errorf("idle: %d %v, want 421", code, err)
				}
				_, _, err = r.ReadResponse(0)
			}
			if !errors.Is(err, io.EOF) {
				t.Errorf("idle: %v, want EOF", err)
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("dropped after %v", d)
			}
			if srv.IdleDrops() != 1 {
				t.Errorf("%d idle drops", srv.IdleDrops())
			}
		})
	}
}

func TestSMTPServerHangRefuseRestore(t *testing.T) {
	srv := testutil.StartSMTP(t)
	open, r := rawSession(t, srv)

	srv.Hang()
	// An open connection gets no reply; a new one connects but is not greeted.
	_, _ = io.WriteString(open, "NOOP\r\n")
	_ = open.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if code, msg, err := r.ReadResponse(0); !isTimeout(err) {
		t.Errorf("hung, open connection: %d %q %v, want a timeout", code, msg, err)
	}
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatalf("hung: dial: %v", err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := nc.Read(make([]byte, 10)); !isTimeout(err) {
		t.Errorf("hung, new connection: %v, want no greeting", err)
	}
	_ = nc.Close()

	if err := srv.Restore(); err != nil {
		t.Fatal(err)
	}
	_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if code, _, err := r.ReadResponse(0); err != nil || code != 250 {
		t.Errorf("restored: the NOOP got %d %v", code, err)
	}
	rawSession(t, srv)

	srv.Refuse()
	if _, err := net.Dial("tcp", srv.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("refusing: dial: %v, want connection refused", err)
	}
	if _, _, err := r.ReadResponse(0); err == nil {
		t.Error("refusing: the open connection was not dropped")
	}
	if err := srv.Restore(); err != nil {
		t.Fatal(err)
	}
	rawSession(t, srv)

	done := make(chan error, 1)
	srv.DownFor(150*time.Millisecond, done)
	if _, err := net.Dial("tcp", srv.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("down: dial: %v, want connection refused", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rawSession(t, srv)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
