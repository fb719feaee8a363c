package queue_test

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingSink is a minimal SMTP server for benchmarks: it accepts every
// message, keeps nothing but a count, the bytes and the time of the last
// acceptance, so that its own cost stays small and its memory flat.
// TODO: use internal/smtpsink once it lands (the shared sink command).
type countingSink struct {
	ln    net.Listener
	count atomic.Int64
	bytes atomic.Int64
	last  atomic.Int64 // unix nanos of the last 250 reply to DATA
	wg    sync.WaitGroup
}

func startSink(tb testing.TB) *countingSink {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &countingSink{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	tb.Cleanup(func() { ln.Close() })
	return s
}

func (s *countingSink) URL() string { return "smtp://" + s.ln.Addr().String() + "?tls=none" }

func (s *countingSink) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	reply := func(l string) bool {
		w.WriteString(l)
		w.WriteString("\r\n")
		return w.Flush() == nil
	}
	if !reply("220 sink ESMTP") {
		return
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(string(bytes.TrimSpace(line)))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			w.WriteString("250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 52428800\r\n")
			if w.Flush() != nil {
				return
			}
		case strings.HasPrefix(cmd, "HELO"), strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"),
			strings.HasPrefix(cmd, "RSET"), strings.HasPrefix(cmd, "NOOP"):
			if !reply("250 2.0.0 Ok") {
				return
			}
		case cmd == "DATA":
			if !reply("354 go ahead") {
				return
			}
			var n int64
			for {
				l, err := r.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				n += int64(len(l))
				if len(l) == 3 && l[0] == '.' && l[1] == '\r' {
					break
				}
			}
			id := s.count.Add(1)
			s.bytes.Add(n)
			s.last.Store(time.Now().UnixNano())
			if !reply("250 2.0.0 Ok: queued as " + itoa(id)) {
				return
			}
		case cmd == "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			if !reply("502 5.5.2 unknown command") {
				return
			}
		}
	}
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}
