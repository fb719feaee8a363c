package testutil

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Relay faults that concern the connection rather than one recipient: a
// relay that does not read a chunk it refused, one that drops idle
// connections, one that stops answering, one that is down for a while.
// The options are fixed at start; Hang, Refuse, Restore and DownFor switch
// a running server.

// RefusedChunk is what the server does with the bytes that follow a
// "BDAT n" command it refuses (no valid recipient: every RCPT of the
// transaction was refused).
type RefusedChunk int

const (
	// ChunkDrained: the server reads the refused chunk and discards it,
	// as RFC 3030 asks and as go-smtp and Postfix do, answering the BDAT
	// with a 5.5.1 ("502 5.5.1 Missing RCPT TO command"; Postfix: "554
	// 5.5.1 Error: no valid recipients"). The default.
	ChunkDrained RefusedChunk = iota
	// ChunkAsCommands: the server does not read the refused chunk: it
	// answers the BDAT "502 5.5.1" and then takes each line of the chunk
	// for a command, answering "501 5.5.2 Bad command" (or "500 5.5.2"),
	// and after the fourth bad command it says "500 5.5.1 Too many
	// errors" and hangs up, as go-smtp does with any client that sends
	// four bad commands. Transactions pipelined behind the chunk are
	// never processed.
	ChunkAsCommands
	// ChunkAsCommandsNoLimit: as ChunkAsCommands, but every line of the
	// chunk is answered "502 5.5.1" and the server never hangs up, so the
	// transactions pipelined behind the chunk are processed, and
	// accepted, after as many stray replies as the chunk had lines.
	ChunkAsCommandsNoLimit
)

// WithRefusedChunk sets what the server does with a refused BDAT chunk.
// Modes other than ChunkDrained work on plain connections only (not with
// STARTTLS or implicit TLS). UndrainedChunks counts the chunks left unread.
func WithRefusedChunk(m RefusedChunk) SMTPOption {
	return func(c *smtpConfig) { c.chunks = m }
}

// WithIdleTimeout makes the server close a connection on which it has
// waited d for the client's next bytes, as relays do with idle clients.
// With reply421 it first writes "421 4.4.2 Idle timeout, closing
// connection" (go-smtp, Postfix); without, it closes silently (a relay
// restarted, or one that does not say goodbye). IdleDrops counts them.
func WithIdleTimeout(d time.Duration, reply421 bool) SMTPOption {
	return func(c *smtpConfig) { c.idle, c.idle421 = d, reply421 }
}

// UndrainedChunks returns how many refused chunks the server has read as
// commands (WithRefusedChunk).
func (s *SMTPServer) UndrainedChunks() int { return int(s.undrained.Load()) }

// IdleDrops returns how many connections the server closed for being
// idle (WithIdleTimeout).
func (s *SMTPServer) IdleDrops() int { return int(s.idleDrops.Load()) }

// Hang makes the server stop answering, as a wedged relay does: new
// connections are accepted (the client's connect succeeds) but never
// greeted, and open connections get no further replies. Restore undoes
// it.
func (s *SMTPServer) Hang() {
	ch := make(chan struct{})
	if !s.hang.CompareAndSwap(nil, &ch) {
		return
	}
	// Interrupt reads in progress; they wait for Restore (see read).
	for _, c := range s.liveConns() {
		_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// Refuse takes the relay down: the listening socket is closed, so
// connections are refused (ECONNREFUSED), and open connections are
// dropped. Restore listens again on the same address.
func (s *SMTPServer) Refuse() {
	s.ln.refuse()
	s.DropConnections()
}

// Restore undoes Hang and Refuse: the server listens on its address again
// and answers. Connections accepted during Hang and never greeted are
// closed. It returns an error if the address cannot be listened on again.
func (s *SMTPServer) Restore() error {
	if ch := s.hang.Swap(nil); ch != nil {
		close(*ch)
	}
	return s.ln.restore()
}

// DownFor is Refuse now and Restore after d, in the background: a relay
// that is down for a while and then back. done, if not nil, receives
// Restore's error when it has run.
func (s *SMTPServer) DownFor(d time.Duration, done chan<- error) {
	s.Refuse()
	time.AfterFunc(d, func() {
		err := s.Restore()
		if done != nil {
			done <- err
		}
	})
}

func (s *SMTPServer) liveConns() []*countedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := make([]*countedConn, 0, len(s.live))
	for c := range s.live {
		conns = append(conns, c)
	}
	return conns
}

// switchListener is the server's listener: it counts connections, parks
// those accepted during Hang, and can close its socket and open it again
// on the same address (Refuse, Restore) while go-smtp's Serve goes on.
type switchListener struct {
	s    *SMTPServer
	addr net.Addr

	mu      sync.Mutex
	ln      net.Listener // nil while refusing
	wake    chan struct{}
	closed  bool
	parked  []net.Conn
	acceptN int // bumps when ln changes, so a failed Accept on an old socket retries
}

func newSwitchListener(s *SMTPServer, ln net.Listener) *switchListener {
	return &switchListener{s: s, addr: ln.Addr(), ln: ln, wake: make(chan struct{})}
}

func (l *switchListener) Addr() net.Addr { return l.addr }

func (l *switchListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		ln, wake, closed, gen := l.ln, l.wake, l.closed, l.acceptN
		l.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if ln == nil {
			<-wake // Restore or Close
			continue
		}
		c, err := ln.Accept()
		if err != nil {
			l.mu.Lock()
			changed := l.acceptN != gen || l.closed
			l.mu.Unlock()
			if changed {
				if c != nil {
					_ = c.Close()
				}
				continue
			}
			return nil, err
		}
		if l.s.hang.Load() != nil {
			l.mu.Lock()
			l.parked = append(l.parked, c)
			l.mu.Unlock()
			continue
		}
		return l.s.track(c), nil
	}
}

func (l *switchListener) refuse() {
	l.mu.Lock()
	ln := l.ln
	l.ln = nil
	l.acceptN++
	parked := l.parked
	l.parked = nil
	l.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range parked {
		_ = c.Close()
	}
}

func (l *switchListener) restore() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.parked {
		_ = c.Close()
	}
	l.parked = nil
	if l.closed || l.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", l.addr.String())
	if err != nil {
		return err
	}
	l.ln = ln
	l.acceptN++
	close(l.wake)
	l.wake = make(chan struct{})
	return nil
}

func (l *switchListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	ln := l.ln
	l.ln = nil
	parked := l.parked
	l.parked = nil
	close(l.wake)
	l.mu.Unlock()
	for _, c := range parked {
		_ = c.Close()
	}
	if ln != nil {
		return ln.Close()
	}
	return nil
}

// track counts an accepted connection and wraps it.
func (s *SMTPServer) track(c net.Conn) *countedConn {
	id := s.conns.Add(1)
	s.open.Add(1)
	cc := &countedConn{Conn: c, s: s, id: int(id), done: make(chan struct{})}
	s.mu.Lock()
	if s.live == nil {
		s.live = map[*countedConn]struct{}{}
	}
	s.live[cc] = struct{}{}
	s.mu.Unlock()
	return cc
}

// countedConn is one server-side connection: counted, closable from
// outside (DropConnections), and the place where the connection faults
// are played (Hang, WithIdleTimeout, WithRefusedChunk).
type countedConn struct {
	net.Conn
	s      *SMTPServer
	id     int
	closed atomic.Bool
	done   chan struct{} // closed by Close

	sess atomic.Pointer[smtpSession] // set when the session starts (EHLO)

	dmu      sync.Mutex
	deadline time.Time // the read deadline go-smtp set

	// WithRefusedChunk state, used by the connection's reading goroutine
	// only: the server reads commands a line per Read, so that a BDAT is
	// seen after the commands before it have been handled.
	in        []byte // read from the network, not yet handed on
	out       []byte // a line (perhaps rewritten) not yet handed on whole
	chunkLeft int    // bytes of an accepted chunk still to pass through
	junkLeft  int    // bytes of a refused chunk still to hand on as lines
	inData    bool   // between an accepted DATA and its final dot
}

func (c *countedConn) Close() error {
	if !c.closed.Swap(true) {
		close(c.done)
		c.s.open.Add(-1)
		c.s.mu.Lock()
		delete(c.s.live, c)
		c.s.mu.Unlock()
	}
	return c.Conn.Close()
}

// SetDeadline and SetReadDeadline remember go-smtp's read deadline, which
// read combines with the idle timeout.
func (c *countedConn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	c.deadline = t
	c.dmu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *countedConn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	c.deadline = t
	c.dmu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *countedConn) Read(p []byte) (int, error) {
	if c.s.cfg.chunks == ChunkDrained {
		return c.read(p)
	}
	return c.readLines(p)
}

var idleReply = []byte("421 4.4.2 Idle timeout, closing connection\r\n")

// read reads from the network, waiting while the server hangs and
// closing the connection when it has been idle too long.
func (c *countedConn) read(p []byte) (int, error) {
	for {
		if ch := c.s.hang.Load(); ch != nil {
			select {
			case <-*ch:
			case <-c.done:
				return 0, net.ErrClosed
			}
		}
		c.dmu.Lock()
		deadline := c.deadline
		c.dmu.Unlock()
		idleAt := time.Time{}
		if c.s.cfg.idle > 0 {
			idleAt = time.Now().Add(c.s.cfg.idle)
			if !deadline.IsZero() && deadline.Before(idleAt) {
				idleAt = time.Time{} // go-smtp's own deadline comes first
			} else {
				deadline = idleAt
			}
		}
		_ = c.Conn.SetReadDeadline(deadline)
		if c.s.hang.Load() != nil {
			continue // Hang came in between: wait
		}
		n, err := c.Conn.Read(p)
		if ch := c.s.hang.Load(); ch != nil && n > 0 {
			// Hang's past deadline wakes a blocked Read, but bytes that
			// arrive before the woken reader runs are returned all the
			// same (the runtime prefers readiness to the expired
			// deadline): hold them until Restore, so that nothing is
			// answered while hung.
			select {
			case <-*ch:
			case <-c.done:
				return 0, net.ErrClosed
			}
		}
		var ne net.Error
		if n == 0 && errors.As(err, &ne) && ne.Timeout() {
			if c.s.hang.Load() != nil {
				continue // interrupted by Hang
			}
			if !idleAt.IsZero() && !time.Now().Before(idleAt) {
				if c.s.cfg.idle421 {
					_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = c.Conn.Write(idleReply)
				}
				c.s.idleDrops.Add(1)
				_ = c.Close()
				return 0, io.EOF
			}
		}
		return n, err
	}
}

// readLines hands the stream on a command line at a time, the bytes of an
// accepted chunk or message whole, and the bytes of a refused chunk as
// lines (WithRefusedChunk).
func (c *countedConn) readLines(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.chunkLeft > 0 {
			q := p[:min(len(p), c.chunkLeft)]
			var n int
			var err error
			if len(c.in) > 0 {
				n = copy(q, c.in)
				c.in = c.in[n:]
			} else {
				n, err = c.read(q)
			}
			c.chunkLeft -= n
			return n, err
		}
		if i := bytes.IndexByte(c.in, '\n'); i >= 0 {
			line := c.in[:i+1]
			c.in = c.in[i+1:]
			c.out = c.filterLine(line)
			continue
		}
		if len(c.in) > 64<<10 { // no line end in 64 KB: hand it on as it is
			c.out, c.in = c.in, nil
			continue
		}
		// c.out is empty, so the bytes before c.in can be reused.
		c.in = append(make([]byte, 0, max(4096, 2*len(c.in))), c.in...)
		n, err := c.read(c.in[len(c.in):cap(c.in)])
		c.in = c.in[:len(c.in)+n]
		if n == 0 && err != nil {
			if len(c.in) > 0 {
				c.out, c.in = c.in, nil
				continue
			}
			return 0, err
		}
	}
}

var (
	noChunk = []byte("BDAT 0 LAST\r\n") // refused without reading anything
	stray   = []byte("HELP\r\n")        // answered "502 5.5.1", not counted as a bad command
)

// filterLine sees one line from the client before go-smtp does and
// returns what go-smtp gets instead.
func (c *countedConn) filterLine(line []byte) []byte {
	if c.junkLeft > 0 {
		c.junkLeft -= len(line)
		if c.s.cfg.chunks == ChunkAsCommandsNoLimit {
			return stray
		}
		return line
	}
	if c.inData {
		if string(line) == ".\r\n" {
			c.inData = false
		}
		return line
	}
	if len(line) < 4 {
		return line
	}
	switch string(bytes.ToUpper(line[:4])) {
	case "BDAT":
		f := bytes.Fields(line[4:])
		if len(f) == 0 {
			return line
		}
		size, err := strconv.Atoi(string(f[0]))
		if err != nil || size < 0 {
			return line
		}
		if c.hasRecipients() {
			c.chunkLeft = size
			return line
		}
		// go-smtp refuses the BDAT and, told the chunk is empty, leaves
		// the real one to be read as commands.
		c.junkLeft = size
		c.s.undrained.Add(1)
		return noChunk
	case "DATA":
		if c.hasRecipients() {
			c.inData = true
		}
	}
	return line
}

func (c *countedConn) hasRecipients() bool {
	ss := c.sess.Load()
	return ss != nil && len(ss.rcpts) > 0
}
