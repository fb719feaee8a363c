package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tayori-news/tayori/internal/jsonw"
)

// outcome is the result of one delivery attempt, to be committed.
type outcome struct {
	sendID, subID int64
	batch         int64
	claim         string
	status        string // sent, skipped, retry, failed
	permanent     bool
	reply         string
	// first: the row was claimed unattempted (queued, attempts 0). A
	// first copy that was sent goes to batch_sent (migration 0007)
	// instead of rewriting its row.
	first bool
}

// appended reports whether o is recorded in batch_sent.
func (o *outcome) appended() bool { return o.first && o.status == "sent" }

// recorder commits outcomes in groups: every FlushInterval (or sooner
// when many are waiting) one transaction writes all of them. A crash
// loses at most the outcomes of the current window, whose copies are then
// sent again by the re-run: that window bounds the duplicates.
//
// A group that cannot be committed (the disk is full, the database is
// locked for longer than its busy timeout) is not dropped: it stays, with
// the outcomes that come after it, and is tried again, every
// retryMax at most, until it is committed or the process stops (Close
// gives it closeGrace more). Meanwhile the recorder is stalled: ready
// blocks, and batch runs send no further copy, since the outcome of a
// copy that cannot be recorded would be lost and the copy sent again by a
// re-run. Copies already in flight are answered and their outcomes kept.
type recorder struct {
	db       *sql.DB
	stmt     *sql.Stmt // qRecord, prepared when first needed (loop goroutine only)
	sentStmt *sql.Stmt // qRecordSent, likewise
	interval time.Duration
	grace    time.Duration // closeGrace; tests shorten it
	log      *slog.Logger

	stalled atomic.Bool // the last commit failed; outcomes wait

	mu      sync.Mutex
	cond    *sync.Cond
	pending []outcome
	queued  uint64 // tickets handed out
	flushed uint64 // tickets committed (or given up)
	err     error  // error of the last group given up
	errAt   uint64 // flushed value after that group
	errN    int    // outcomes in that group
	fails   uint64 // groups given up so far (only when closing)
	closed  bool
	stopped bool // the loop has ended: nothing added now is committed
	kick    chan struct{}
	done    chan struct{}
}

// Retry pacing of a group that could not be committed, and how long a
// closing recorder still tries.
const (
	retryMin   = 10 * time.Millisecond
	retryMax   = time.Second
	closeGrace = 10 * time.Second
)

func newRecorder(db *sql.DB, interval time.Duration, log *slog.Logger) *recorder {
	r := &recorder{db: db, interval: interval, grace: closeGrace, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	go r.loop()
	return r
}

// add queues o and returns its ticket for wait.
func (r *recorder) add(o outcome) uint64 {
	r.mu.Lock()
	r.pending = append(r.pending, o)
	r.queued++
	t := r.queued
	n := len(r.pending)
	r.mu.Unlock()
	if n >= 512 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return t
}

// ready returns at once while outcomes are being committed, and blocks
// while the recorder is stalled (a commit failed and waits to be tried
// again) until it is not, ctx ends or the recorder closes. A batch run
// asks before each copy.
func (r *recorder) ready(ctx context.Context) error {
	if !r.stalled.Load() {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.stalled.Load() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.closed {
			return ErrClosed
		}
		r.cond.Wait()
	}
	return nil
}

// wait blocks until the outcome with ticket t is committed. It returns
// the error of its group if the group was given up (see close).
func (r *recorder) wait(ctx context.Context, t uint64) error {
	if t == 0 {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.flushed < t {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.stopped {
			return ErrClosed
		}
		r.cond.Wait()
	}
	if r.err != nil && t <= r.errAt && t > r.errAt-uint64(r.errN) {
		return r.err
	}
	return nil
}

// failures returns how many groups of outcomes were given up so far
// (only a recorder closing with a stalled group gives one up). A batch
// run that sees it change while its outcomes were being committed cannot
// tell whether all of them were, and has its batch run again.
func (r *recorder) failures() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fails
}

func (r *recorder) loop() {
	defer close(r.done)
	defer func() {
		r.mu.Lock()
		r.stopped = true
		r.cond.Broadcast()
		r.mu.Unlock()
	}()
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	var (
		held     []outcome // a group not committed yet: written again, first
		delay    = retryMin
		closedAt time.Time
		lastLog  time.Time
	)
	for {
		if len(held) == 0 {
			select {
			case <-tick.C:
			case <-r.kick:
			}
		} else {
			time.Sleep(delay)
			delay = min(2*delay, retryMax)
		}
		r.mu.Lock()
		group := append(held, r.pending...)
		r.pending = nil
		closed := r.closed
		r.mu.Unlock()
		if closed && closedAt.IsZero() {
			closedAt = time.Now()
		}
		if len(group) > 0 {
			err := r.flushOnce(group)
			switch {
			case err == nil:
				held, delay = nil, retryMin
				r.mu.Lock()
				r.flushed += uint64(len(group))
				r.stalled.Store(false)
				r.cond.Broadcast()
				r.mu.Unlock()
				if !lastLog.IsZero() {
					r.log.Warn("outcomes recorded again", "count", len(group))
					lastLog = time.Time{}
				}
			case closed && time.Since(closedAt) > r.grace:
				// The process is stopping: these copies' rows stay open,
				// and a re-run sends them again.
				held = nil
				r.mu.Lock()
				r.flushed += uint64(len(group))
				r.err, r.errAt, r.errN = err, r.flushed, len(group)
				r.fails++
				r.stalled.Store(false)
				r.cond.Broadcast()
				r.mu.Unlock()
				r.log.Error("outcomes given up: their copies may be sent again", "err", err, "count", len(group))
			default:
				held = group
				r.mu.Lock()
				r.stalled.Store(true)
				r.cond.Broadcast()
				r.mu.Unlock()
				if time.Since(lastLog) > 10*time.Second {
					r.log.Error("record outcomes: sending stops until they are recorded", "err", err, "count", len(group))
					lastLog = time.Now()
				}
			}
		}
		if closed && len(held) == 0 {
			r.mu.Lock()
			empty := len(r.pending) == 0
			r.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

// qRecord writes a group of outcomes in one statement: the group goes to
// SQLite as a JSON array of [send_id, subscriber_id, status, permanent,
// reply, claim] and each row is updated only if it is unfinished (or was
// cancelled while its copy was in flight) and its batch's claim is still
// the one the outcome was made under.
const qRecord = `UPDATE deliveries
   SET status = j.value ->> 2, permanent = j.value ->> 3, reply = j.value ->> 4,
       attempts = attempts + 1, updated_at = ?2
  FROM jsonb_each(?1) AS j
 WHERE deliveries.send_id = j.value ->> 0 AND deliveries.subscriber_id = j.value ->> 1
   AND deliveries.status IN ('queued','retry','sending','cancelled')
   AND EXISTS (SELECT 1 FROM batch_claims b
                WHERE b.send_id = deliveries.send_id AND b.batch = deliveries.batch AND b.claim = j.value ->> 5)`

// qRecordSent appends the group's first copies that were sent, one
// batch_sent row per batch: ?1 is a JSON array of [send_id, batch, claim,
// n, [[subscriber_id, reply], ...]], and a batch's row goes in only while
// the claim its copies were sent under stands.
const qRecordSent = `INSERT INTO batch_sent (send_id, batch, n, at, sent)
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 3, ?2, j.value -> 4
  FROM json_each(?1) AS j
 WHERE EXISTS (SELECT 1 FROM batch_claims b
                WHERE b.send_id = j.value ->> 0 AND b.batch = j.value ->> 1 AND b.claim = j.value ->> 2)`

func (r *recorder) flushOnce(batch []outcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wrap := func(err error) error { return fmt.Errorf("queue: record %d outcomes: %w", len(batch), err) }
	rows, sent := encodeRows(batch), encodeSent(batch)
	var tx *sql.Tx // with both statements to run: both or neither
	if rows != "" && sent != "" {
		var err error
		if tx, err = r.db.BeginTx(ctx, nil); err != nil {
			return wrap(err)
		}
		defer tx.Rollback()
	}
	now := time.Now().UnixMilli()
	if err := r.exec(ctx, tx, &r.stmt, qRecord, rows, now); err != nil {
		return wrap(err)
	}
	if err := r.exec(ctx, tx, &r.sentStmt, qRecordSent, sent, now); err != nil {
		return wrap(err)
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// exec runs q with arg and now, in tx if there is one; an empty arg runs
// nothing. q is prepared once, into *st: an UPDATE … FROM costs more to
// prepare than to run for a small group.
func (r *recorder) exec(ctx context.Context, tx *sql.Tx, st **sql.Stmt, q, arg string, now int64) error {
	if arg == "" {
		return nil
	}
	if *st == nil {
		p, err := r.db.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		*st = p
	}
	stmt := *st
	if tx != nil {
		stmt = tx.StmtContext(ctx, stmt)
	}
	_, err := stmt.ExecContext(ctx, arg, now)
	return err
}

// encodeRows is qRecord's argument for the outcomes that update their
// rows, "" if there are none.
func encodeRows(batch []outcome) string {
	var buf []byte
	for i := range batch {
		o := &batch[i]
		if o.appended() {
			continue
		}
		if buf == nil {
			buf = make([]byte, 0, 64+len(batch)*96)
			buf = append(buf, '[')
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, o.sendID, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, o.subID, 10)
		buf = append(buf, ',')
		buf = jsonw.AppendString(buf, o.status)
		if o.permanent {
			buf = append(buf, ",1,"...)
		} else {
			buf = append(buf, ",0,"...)
		}
		buf = jsonw.AppendString(buf, o.reply)
		buf = append(buf, ',')
		buf = jsonw.AppendString(buf, o.claim)
		buf = append(buf, ']')
	}
	if buf == nil {
		return ""
	}
	return string(append(buf, ']'))
}

// encodeSent is qRecordSent's argument: the first copies sent, grouped
// by batch run in order of first appearance; "" if there are none.
func encodeSent(batch []outcome) string {
	type run struct {
		sendID, batch int64
		claim         string
	}
	var (
		order []run
		byRun map[run][]*outcome
	)
	for i := range batch {
		o := &batch[i]
		if !o.appended() {
			continue
		}
		k := run{o.sendID, o.batch, o.claim}
		if byRun == nil {
			byRun = map[run][]*outcome{}
		}
		if _, ok := byRun[k]; !ok {
			order = append(order, k)
		}
		byRun[k] = append(byRun[k], o)
	}
	if len(order) == 0 {
		return ""
	}
	buf := make([]byte, 0, 64*len(order)+len(batch)*64)
	buf = append(buf, '[')
	for i, k := range order {
		if i > 0 {
			buf = append(buf, ',')
		}
		os := byRun[k]
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, k.sendID, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, k.batch, 10)
		buf = append(buf, ',')
		buf = jsonw.AppendString(buf, k.claim)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(len(os)), 10)
		buf = append(buf, ",["...)
		for j, o := range os {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = strconv.AppendInt(buf, o.subID, 10)
			buf = append(buf, ',')
			buf = jsonw.AppendString(buf, o.reply)
			buf = append(buf, ']')
		}
		buf = append(buf, "]]"...)
	}
	return string(append(buf, ']'))
}

// close flushes what is pending and stops the writer.
func (r *recorder) close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.cond.Broadcast()
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	<-r.done
	for _, st := range []*sql.Stmt{r.stmt, r.sentStmt} {
		if st != nil {
			st.Close()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return errors.Join(errors.New("queue: some outcomes were not recorded"), r.err)
	}
	return nil
}
