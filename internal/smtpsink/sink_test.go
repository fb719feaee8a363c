package smtpsink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/smtpsink"
)

// startSink serves a sink on a loopback port until the test ends.
func startSink(t *testing.T) (*smtpsink.Sink, net.Listener) {
	t.Helper()
	sink := smtpsink.New(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return sink, ln
}

func TestSinkCounts(t *testing.T) {
	sink, ln := startSink(t)

	c, err := smtp.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("Subject: x\r\n\r\n本文\r\n")
	const n = 5
	for i := range n {
		if err := c.Mail("a@example.jp"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt(fmt.Sprintf("r%d@example.jp", i)); err != nil {
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Quit()

	st := sink.Stats()
	if st.Messages != n || st.Recipients != n || st.Connections != 1 || st.Bytes != int64(n*len(msg)) {
		t.Errorf("stats %+v, want %d messages of %d bytes on 1 connection", st, n, len(msg))
	}
	if st.First.IsZero() || st.Last.Before(st.First) {
		t.Errorf("first %v last %v", st.First, st.Last)
	}

	hs := httptest.NewServer(sink.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var got smtpsink.Stats
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Messages != n {
		t.Errorf("JSON stats %+v", got)
	}
	resp, err = http.Post(hs.URL+"/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := sink.Stats(); st.Messages != 0 || !st.First.IsZero() {
		t.Errorf("after reset %+v", st)
	}
}

// The sink answers each message as Postfix does, with its own queue id.
func TestSinkRepliesWithQueueIDs(t *testing.T) {
	_, ln := startSink(t)
	conn, err := textproto.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	step := func(code int, format string, args ...any) string {
		t.Helper()
		if format != "" {
			if err := conn.PrintfLine(format, args...); err != nil {
				t.Fatal(err)
			}
		}
		_, msg, err := conn.ReadResponse(code)
		if err != nil {
			t.Fatalf("%q: %v", format, err)
		}
		return msg
	}
	step(220, "")
	step(250, "EHLO client.example.jp")
	ids := map[string]bool{}
	for i := range 2 {
		step(250, "MAIL FROM:<a@example.jp>")
		step(250, "RCPT TO:<r%d@example.jp>", i)
		step(354, "DATA")
		msg := step(250, "Subject: x\r\n\r\nbody\r\n.")
		id, ok := strings.CutPrefix(msg, "2.0.0 Ok: queued as ")
		if !ok || len(id) != 15 || ids[id] {
			t.Errorf("reply %q: want 2.0.0 Ok: queued as and a new 15-character id", msg)
		}
		ids[id] = true
	}
}
