package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"time"
)

// Sending several messages per round trip
//
// With PIPELINING (RFC 2920) and CHUNKING (RFC 3030) a client may send the
// next transaction's commands before the previous one's replies arrive:
// "BDAT n LAST" carries its message's bytes with it, so no transaction
// waits on a reply to go on. Conn.Start adds a transaction to the
// connection's write buffer and returns; once PipelineWindow transactions
// are gathered (or Wait is called) they leave in one write, and once two
// windows are out the older one's replies are read, in order, and handed to
// each transaction's callback. A message then costs a share of a write and
// of a read instead of a whole round trip, which matters on loopback
// (system calls and wake-ups) and far more on a relay across a network.
//
// Each pipelined transaction begins with RSET, which the relay answers
// whatever the state: a transaction refused half way (RCPT refused, then
// BDAT refused) would otherwise leave MAIL FROM open on some relays and
// fail the next one with "nested MAIL".
//
// Staying in step. Replies are paired with commands by position, so each
// is checked against its command: RSET must get 2xx; a 5.5.x (or 500–504
// without an enhanced code: bad syntax, bad sequence, unknown command) to
// MAIL, or to the data of a transaction whose recipient was accepted, a
// 3xx anywhere, or a 2xx to the data of a transaction without recipient
// cannot belong to its command. Only the reply to a reader's own RCPT, or
// to the data of its transaction (which holds only that reader), settles
// that reader as refused.
//
// A refused recipient makes the relay refuse the chunk too. RFC 3030 says
// the relay reads the refused chunk and drops it (Postfix and go-smtp
// do), but some relays do not: they take the chunk's lines for commands
// and answer each, so that what follows is answered late by as many
// replies as the chunk had lines. The RSET of the next transaction tells
// the two apart: 2xx, the chunk was read; anything else is the relay's
// reply to the chunk's first line, and the client skips exactly that many
// stray replies (each must be a refusal) to reach the next transaction's
// own replies, which are then read as usual: every copy the relay
// accepted is recorded as sent, none twice. Such a relay is noted on the
// Pool, whose later connections send with DATA, which waits for the
// relay's go-ahead (354) before any message byte.
//
// When the connection turns out dead (a 421, or EOF or a reset before the
// first reply to a write made with nothing outstanding, as when the relay
// closed the connection while it sat idle) or out of step, or the relay
// hangs up while still answering a refused chunk's lines, the transactions
// not settled were not accepted (or cannot be known to be): Conn closes
// the connection, dials again and writes them again, in order, each on at
// most maxTries connections, without the caller seeing it. A connection
// lost after the relay began answering a write (EOF, reset, a reply that
// does not come within DataTimeout) leaves the outstanding transactions'
// fates unknown: they fail with a *ConnError, and a retry can duplicate at
// most those.

// PipelineWindow is how many transactions Start gathers on a connection
// before it writes them together.
const PipelineWindow = 16

// MaxInFlight is how many transactions may be written and not yet
// answered on a connection: two windows. Start reads the older window's
// replies only after it has written the newer one, so the relay has had
// the time it took to build a window to answer and the replies are
// mostly waiting in the socket, rather than read one at a time, each
// with its wake-up, as the relay writes them. It is also the most copies
// a crash can leave sent but unanswered on a connection.
const MaxInFlight = 2 * PipelineWindow

// maxTries is how many connections a pipelined transaction may be written
// on when connections turn out dead or out of step before it is settled.
const maxTries = 3

// pending is a transaction taken by Start but not yet settled.
type pending struct {
	done       func(Reply, error)
	from, rcpt string
	// Its bytes (RSET, MAIL, RCPT, BDAT and the message) are
	// buf.b[start:end], the message from raw: kept until the transaction
	// is settled, so that it can go again on another connection.
	buf             *obuf
	start, raw, end int
	tries           uint8 // connections it was written on
	head            bool  // first of a write made while nothing was outstanding
}

// obuf holds the bytes of transactions written together, until the last
// of them is settled.
type obuf struct {
	b    []byte
	refs int
}

// Start sends raw to rcpt like Send, but on a connection that allows it
// (PIPELINING and CHUNKING offered, no TLS layer between, raw in canonical
// form) it only queues the transaction, with a copy of raw, and returns:
// done receives the outcome later, from a later Start or from Wait. The
// first message after the connection leaves the pool, or after a failure,
// goes synchronously, so that a connection the relay closed while it was
// idle is re-dialled as Send does before anything is pipelined. Whenever
// Start does not pipeline, it first waits for the outstanding transactions,
// then sends raw with Send and calls done before it returns.
//
// Either way done is called exactly once per Start, in the order of the
// Start calls, on the caller's goroutine; raw may be reused as soon as
// Start returns. The caller must call Wait before the connection goes back
// to the pool.
func (c *Conn) Start(ctx context.Context, envelopeFrom, rcpt string, raw []byte, done func(Reply, error)) {
	c.start(ctx, envelopeFrom, rcpt, raw, isCanonical(raw), done)
}

// StartBuilt is Start for a message from a Builder, which is in canonical
// form by construction: it skips the check Start makes of every byte.
func (c *Conn) StartBuilt(ctx context.Context, envelopeFrom, rcpt string, b Built, done func(Reply, error)) {
	c.start(ctx, envelopeFrom, rcpt, b.Raw, b.canonical || isCanonical(b.Raw), done)
}

func (c *Conn) start(ctx context.Context, envelopeFrom, rcpt string, raw []byte, canonical bool, done func(Reply, error)) {
	p := c.pool
	now := time.Now()
	pipelined := c.warm && c.client != nil && !c.broken && c.pipelining && c.chunking && c.plain &&
		c.client.Text.W.Buffered() == 0 &&
		(p.opts.MaxMessagesPerConn <= 0 || c.sent+c.outstanding() < p.opts.MaxMessagesPerConn) &&
		now.Sub(c.lastUsed) < p.opts.IdleCheck && canonical
	if !pipelined {
		c.Wait(ctx)
		reply, err := c.Send(ctx, envelopeFrom, rcpt, raw)
		c.warm = err == nil
		done(reply, err)
		return
	}
	if err := checkEnvelope(envelopeFrom, rcpt); err != nil {
		c.Wait(ctx)
		done(Reply{}, err)
		return
	}
	if p.opts.Limiter != nil {
		if err := p.opts.Limiter.Wait(ctx); err != nil {
			c.Wait(ctx)
			done(Reply{}, fmt.Errorf("mailer: rate limiter: %w", err))
			return
		}
	}
	if err := ctx.Err(); err != nil {
		c.Wait(ctx)
		done(Reply{}, err)
		return
	}
	// The transaction joins the write buffer; the buffer goes out in one
	// write when a window is full (or it is large, or someone waits).
	// Once two windows are out, the older one's replies are read: a group
	// of messages costs one write and, mostly, one read.
	if c.wbuf == nil {
		c.wbuf = c.takeBuf()
	}
	ob := c.wbuf
	start := len(ob.b)
	ob.b = appendChunkedCommands(append(ob.b, "RSET\r\n"...), envelopeFrom, rcpt, len(raw))
	at := len(ob.b)
	ob.b = append(ob.b, raw...)
	ob.refs++
	c.push(pending{done: done, from: envelopeFrom, rcpt: rcpt, buf: ob, start: start, raw: at, end: len(ob.b), tries: 1})
	c.queued++
	c.lastUsed = now
	switch {
	case c.outstanding() >= MaxInFlight:
		c.flush(ctx)
		c.readReplies(ctx, MaxInFlight-PipelineWindow)
	case c.queued >= PipelineWindow || len(ob.b) >= maxWriteBuffer:
		c.flush(ctx)
	}
}

// maxWriteBuffer: a write buffer this large goes out before the window is
// full, so that big messages are not all held in memory at once.
const maxWriteBuffer = 256 << 10

// outstanding is how many transactions Start took and did not settle.
func (c *Conn) outstanding() int { return len(c.inflight) - c.ihead }

// push and pop use inflight as a queue that reuses its array.
func (c *Conn) push(t pending) {
	if len(c.inflight) == cap(c.inflight) && c.ihead > 0 {
		n := copy(c.inflight, c.inflight[c.ihead:])
		clear(c.inflight[n:])
		c.inflight, c.ihead = c.inflight[:n], 0
	}
	if c.inflight == nil {
		c.inflight = make([]pending, 0, 2*MaxInFlight)
	}
	c.inflight = append(c.inflight, t)
}

func (c *Conn) pop() pending {
	t := c.inflight[c.ihead]
	c.inflight[c.ihead] = pending{}
	c.ihead++
	if c.ihead == len(c.inflight) {
		c.inflight, c.ihead = c.inflight[:0], 0
	}
	return t
}

func (c *Conn) takeBuf() *obuf {
	if n := len(c.free); n > 0 {
		ob := c.free[n-1]
		c.free = c.free[:n-1]
		return ob
	}
	return &obuf{}
}

// unhold drops a settled transaction's hold on its buffer; a buffer no
// transaction holds is kept for reuse (not a huge one).
func (c *Conn) unhold(ob *obuf) {
	ob.refs--
	if ob.refs > 0 || ob == c.wbuf {
		return
	}
	if cap(ob.b) > 2*maxWriteBuffer || len(c.free) >= 2 {
		return
	}
	ob.b = ob.b[:0]
	c.free = append(c.free, ob)
}

// settle hands the oldest outstanding transaction its outcome.
func (c *Conn) settle(reply Reply, err error) {
	t := c.pop()
	if t.buf != nil {
		c.unhold(t.buf)
	}
	if err == nil {
		c.sent++ // next has set lastUsed
	}
	t.done(reply, err)
}

// flush writes the queued transactions. A write that fails because the
// relay went away leaves the replies to tell how far it got (next); one
// that times out, or is cut short by ctx, fails everything outstanding.
func (c *Conn) flush(ctx context.Context) {
	if c.queued == 0 {
		return
	}
	ob := c.wbuf
	c.wbuf = nil
	first := c.outstanding() - c.queued
	c.inflight[c.ihead+first].head = first == 0
	c.queued = 0
	stop := c.watch(ctx)
	c.deadline(ctx, c.pool.opts.DataTimeout)
	_, err := c.nc.Write(ob.b)
	stop()
	if err != nil {
		c.broken = true
		if isTimeout(err) || ctx.Err() != nil {
			if ctx.Err() == nil {
				err = &timeoutError{what: "write", after: c.pool.opts.DataTimeout, err: err}
			}
			cerr := &ConnError{Stage: StageMail, Err: err}
			c.pool.connFailure(ctx, cerr)
			c.abandon(cerr)
		}
	}
}

// Wait writes what is buffered, reads the replies of every outstanding
// transaction and calls their callbacks.
func (c *Conn) Wait(ctx context.Context) {
	c.flush(ctx)
	c.readReplies(ctx, 0)
}

// readReplies settles the oldest outstanding transactions until keep are
// left (or none is written).
func (c *Conn) readReplies(ctx context.Context, keep int) {
	if c.outstanding() <= keep || c.client == nil {
		return
	}
	nc := c.nc
	stop := c.watch(ctx)
	c.armed = time.Time{} // next sets the read deadline
	for c.outstanding() > keep && c.outstanding() > c.queued && c.client != nil {
		if c.nc != nc { // re-dialled
			stop()
			nc, stop = c.nc, c.watch(ctx)
			c.armed = time.Time{}
		}
		c.next(ctx)
	}
	stop()
}

// Stages of a pipelined transaction's four replies.
var pipelinedStages = [4]string{StageMail, StageMail, StageRcpt, StageData}

// next reads the replies of the oldest outstanding transaction (RSET,
// MAIL, RCPT, BDAT), checks them against their commands and settles it;
// or, when the connection turns out dead or out of step, writes the
// outstanding transactions again on a new connection (redo); or, when the
// connection is lost, fails them all.
func (c *Conn) next(ctx context.Context) {
	p := c.pool
	t := &c.inflight[c.ihead]
	text := c.client.Text
	// Each transaction's replies within DataTimeout (within an eighth of
	// it: the deadline is moved only when that much has passed, not for
	// every message).
	now := time.Now()
	c.lastUsed = now
	if now.Sub(c.armed) > p.opts.DataTimeout/8 {
		c.deadline(ctx, p.opts.DataTimeout)
		c.armed = now
	}
	var (
		codes [4]int
		msgs  [4]string
		i     int
	)
	if c.suspect > 0 {
		// The transaction before was refused with its chunk: this reply
		// is the RSET's (the relay read the chunk) or the relay's reply
		// to the chunk's first line.
		lines := c.suspect
		c.suspect = 0
		code, msg, err := text.ReadResponse(0)
		if err != nil {
			c.readFailed(ctx, err, 0, t.head)
			return
		}
		if code/100 == 2 {
			codes[0], msgs[0], i = code, msg, 1
		} else {
			p.noteUndrained(ctx)
			c.broken = true // re-dial once what is outstanding is settled
			for n := 1; n < lines; n++ {
				code, _, err = text.ReadResponse(0)
				if err != nil {
					if isTimeout(err) {
						c.readFailed(ctx, err, 0, false)
						return
					}
					// The relay hung up while it was still reading the
					// chunk: it never read what was written after.
					c.redo(ctx, &ConnError{Stage: StageMail, Err: fmt.Errorf("relay hung up after a refused chunk: %w", err)})
					return
				}
				if code/100 == 2 || code/100 == 3 {
					c.redo(ctx, &ConnError{Stage: StageMail, Err: fmt.Errorf("out of step after a refused chunk: reply %d to a line of it", code)})
					return
				}
			}
			c.deadline(ctx, p.opts.DataTimeout)
			c.armed = time.Now()
		}
	}
	for ; i < 4; i++ {
		code, msg, err := text.ReadResponse(0)
		if err != nil {
			c.readFailed(ctx, err, i, i == 0 && t.head)
			return
		}
		if code == 421 {
			// The relay is closing the connection: this transaction was
			// not accepted and those after it will not be read.
			c.broken = true
			c.redo(ctx, replyError(pipelinedStages[i], code, msg))
			return
		}
		codes[i], msgs[i] = code, msg
	}
	rset, mail, rcpt, data := codes[0], codes[1], codes[2], codes[3]
	recipient := mail/100 == 2 && rcpt/100 == 2
	if rset/100 != 2 || mail/100 == 3 || rcpt/100 == 3 || data/100 == 3 || outOfStep(mail, msgs[1]) ||
		(recipient && outOfStep(data, msgs[3])) || (!recipient && data/100 == 2) {
		c.redo(ctx, &ConnError{Stage: StageMail, Err: fmt.Errorf("out of step: replies %d, %d, %d, %d to RSET, MAIL, RCPT and BDAT", rset, mail, rcpt, data)})
		return
	}
	p.brk.answered()
	switch {
	case !recipient:
		// The relay refused the chunk with the transaction; one that did
		// not read it answers its lines before the next RSET.
		c.suspect = bytes.Count(t.buf.b[t.raw:t.end], lf)
		if mail/100 != 2 {
			c.settle(Reply{}, replyError(StageMail, mail, msgs[1]))
		} else {
			c.settle(Reply{}, replyError(StageRcpt, rcpt, msgs[2]))
		}
	case data/100 != 2:
		c.settle(Reply{}, replyError(StageData, data, msgs[3]))
	default:
		reply := Reply{Code: data}
		reply.Enhanced, reply.Message = splitEnhanced(msgs[3])
		c.settle(reply, nil)
	}
}

// readFailed handles an error reading the i-th reply of the oldest
// outstanding transaction. dead says nothing written since the connection
// was last idle has been answered: EOF or a reset then means the relay
// had closed the connection, and the transactions go again elsewhere. A
// reply that does not parse is out of step. Anything else leaves the
// outstanding transactions' fates unknown: they fail.
func (c *Conn) readFailed(ctx context.Context, err error, i int, dead bool) {
	c.broken = true
	var pe textproto.ProtocolError
	switch {
	case ctx.Err() != nil:
	case errors.As(err, &pe):
		c.redo(ctx, &ConnError{Stage: pipelinedStages[i], Err: fmt.Errorf("out of step: %w", err)})
		return
	case dead && !isTimeout(err):
		c.redo(ctx, &ConnError{Stage: pipelinedStages[i], Err: err})
		return
	case isTimeout(err):
		err = &timeoutError{what: "reply", after: c.pool.opts.DataTimeout, err: err}
	}
	cerr := &ConnError{Stage: pipelinedStages[i], Err: err}
	c.pool.connFailure(ctx, cerr)
	c.abandon(cerr)
}

// redo closes the connection, dials again and writes the outstanding
// transactions again, in order: none of them was settled, and none can
// have been accepted on the old connection. A transaction already written
// on maxTries connections fails with cause instead.
func (c *Conn) redo(ctx context.Context, cause error) {
	p := c.pool
	c.broken = true
	c.close()
	for c.outstanding() > 0 && c.inflight[c.ihead].tries >= maxTries {
		c.settle(Reply{}, cause)
	}
	if c.outstanding() == 0 {
		return
	}
	p.log.DebugContext(ctx, "smtp re-dial: connection dead or out of step, writing again", "relay", p.cfg.Addr(),
		"transactions", c.outstanding(), "err", cause)
	if err := c.dial(ctx); err != nil {
		c.abandon(err)
		return
	}
	if !c.pipelining || !c.chunking || !c.plain {
		// The new connection does not pipeline: one at a time.
		for c.outstanding() > 0 {
			t := &c.inflight[c.ihead]
			reply, err := c.send(ctx, t.from, t.rcpt, t.buf.b[t.raw:t.end])
			c.settle(reply, err)
		}
		c.queued = 0
		return
	}
	// All of them in one buffer of their own, written at once.
	c.wbuf = nil // the queued ones are moved with the others
	ob := c.takeBuf()
	for i := c.ihead; i < len(c.inflight); i++ {
		t := &c.inflight[i]
		start := len(ob.b)
		ob.b = append(ob.b, t.buf.b[t.start:t.end]...)
		c.unhold(t.buf)
		t.buf, t.raw, t.end, t.start = ob, start+t.raw-t.start, start+t.end-t.start, start
		t.tries++
		t.head = false
		ob.refs++
	}
	c.wbuf = ob
	c.queued = c.outstanding()
	c.flush(ctx)
}

// abandon fails every outstanding transaction with err and marks the
// connection broken: it is out of step.
func (c *Conn) abandon(err error) {
	c.broken = true
	for c.outstanding() > 0 {
		c.settle(Reply{}, err)
	}
	c.queued = 0
	if c.wbuf != nil {
		c.wbuf.b, c.wbuf.refs = c.wbuf.b[:0], 0
	}
}

// noteUndrained records that the relay takes the bytes of a refused chunk
// for commands; from now on the Pool's new connections send with DATA.
func (p *Pool) noteUndrained(ctx context.Context) {
	if p.undrained.CompareAndSwap(false, true) {
		p.log.WarnContext(ctx, "the relay did not read a BDAT chunk it refused (RFC 3030) and answered its lines as commands; sending with DATA from now on",
			"relay", p.cfg.Addr())
	}
}
