package mailer

import (
	"context"
	"errors"
	"fmt"
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
// When the connection breaks, every outstanding transaction fails with a
// *ConnError: those whose bytes reached the relay may have been delivered,
// so a retry can duplicate at most the outstanding ones.

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

// pipelinedReplies are the replies to a pipelined transaction, in order:
// RSET, MAIL, RCPT and BDAT LAST, with the code each expects.
var pipelinedReplies = [...]struct {
	stage  string
	expect int
}{{StageMail, 250}, {StageMail, 250}, {StageRcpt, 25}, {StageData, 250}}

// pending is a transaction taken by Start but not yet answered.
type pending struct {
	done func(Reply, error)
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
	pipelined := c.warm && c.client != nil && !c.broken && c.pipelining && c.chunking && c.plain &&
		c.client.Text.W.Buffered() == 0 &&
		(p.opts.MaxMessagesPerConn <= 0 || c.sent+len(c.inflight) < p.opts.MaxMessagesPerConn) &&
		time.Since(c.lastUsed) < p.opts.IdleCheck && canonical
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
	w := appendChunkedCommands(append(c.wbuf, "RSET\r\n"...), envelopeFrom, rcpt, len(raw))
	c.wbuf = append(w, raw...)
	c.inflight = append(c.inflight, pending{done: done})
	c.lastUsed = time.Now()
	switch {
	case len(c.inflight) >= MaxInFlight:
		if !c.flush(ctx) {
			return // every outstanding transaction has failed
		}
		c.readReplies(ctx, MaxInFlight-PipelineWindow)
	case len(c.inflight)%PipelineWindow == 0 || len(c.wbuf) >= maxWriteBuffer:
		c.flush(ctx)
	}
}

// maxWriteBuffer: a write buffer this large goes out before the window is
// full, so that big messages are not all held in memory at once.
const maxWriteBuffer = 256 << 10

// flush writes the buffered transactions. After a failed write the
// connection is out of step: what the relay answered before it went away
// is read, the rest fails with the write's error.
func (c *Conn) flush(ctx context.Context) bool {
	if len(c.wbuf) == 0 {
		return true
	}
	disarm := c.armDeadline(ctx)
	_, err := c.nc.Write(c.wbuf)
	disarm()
	if cap(c.wbuf) > 2*maxWriteBuffer {
		c.wbuf = nil // one huge message: do not keep its buffer
	} else {
		c.wbuf = c.wbuf[:0]
	}
	if err != nil {
		c.broken = true
		werr := &ConnError{Stage: StageMail, Err: err}
		c.readReplies(ctx, 0)
		c.abandon(werr)
		return false
	}
	return true
}

// Wait writes what is buffered, reads the replies of every outstanding
// transaction and calls their callbacks.
func (c *Conn) Wait(ctx context.Context) {
	if !c.flush(ctx) {
		return
	}
	c.readReplies(ctx, 0)
}

// readReplies reads the replies of the oldest outstanding transactions
// until keep are left (or the connection is lost), under one deadline
// for them all.
func (c *Conn) readReplies(ctx context.Context, keep int) {
	if len(c.inflight) <= keep {
		return
	}
	defer c.armDeadline(ctx)()
	for len(c.inflight) > keep && c.next() {
	}
}

// next reads the replies of the oldest outstanding transaction (RSET,
// MAIL, RCPT, BDAT) and calls its callback. It returns false when the
// connection was lost (every outstanding transaction has then failed).
// The caller arms the connection's deadline.
func (c *Conn) next() bool {
	text := c.client.Text
	// Every reply is read, even after a refusal, to stay in step; the
	// first refusal is the transaction's outcome.
	var (
		code int
		msg  string
		err  error
	)
	for _, r := range pipelinedReplies {
		rc, rm, rerr := text.ReadResponse(r.expect)
		if lostConn(rerr) {
			c.abandon(classify(r.stage, rerr))
			return false
		}
		if rerr != nil && err == nil {
			err = classify(r.stage, rerr)
		}
		code, msg = rc, rm
	}
	done := c.inflight[0].done
	c.inflight[0] = pending{}
	c.inflight = c.inflight[1:]
	if se := (*SMTPError)(nil); errors.As(err, &se) && se.Code == 421 {
		// The relay is closing the connection: what is still outstanding
		// will not be answered.
		c.broken = true
		done(Reply{}, err)
		c.abandon(&ConnError{Stage: StageMail, Err: fmt.Errorf("relay closed the connection: %w", err)})
		return false
	}
	if err != nil {
		done(Reply{}, err)
		return true
	}
	c.sent++
	c.lastUsed = time.Now()
	reply := Reply{Code: code}
	reply.Enhanced, reply.Message = splitEnhanced(msg)
	done(reply, nil)
	return true
}

// abandon fails every outstanding transaction with err and marks the
// connection broken: it is out of step.
func (c *Conn) abandon(err error) {
	c.broken = true
	c.wbuf = c.wbuf[:0]
	inflight := c.inflight
	c.inflight = nil
	for _, t := range inflight {
		t.done(Reply{}, err)
	}
}
