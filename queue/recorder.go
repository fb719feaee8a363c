package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/tayori-news/tayori/internal/jsonw"
)

// outcome is the result of one delivery attempt, to be committed.
type outcome struct {
	sendID, subID int64
	claim         string
	status        string // sent, skipped, retry, failed
	permanent     bool
	reply         string
}

// recorder commits outcomes in groups: every FlushInterval (or sooner
// when many are waiting) one transaction writes all of them. A crash
// loses at most the outcomes of the current window, whose copies are then
// sent again by the re-run: that window bounds the duplicates.
type recorder struct {
	db       *sql.DB
	stmt     *sql.Stmt // qRecord, prepared by the first flush (loop goroutine only)
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	pending []outcome
	queued  uint64 // tickets handed out
	flushed uint64 // tickets committed (or failed)
	err     error  // error of the last failed flush
	errAt   uint64 // flushed value after that failure
	errN    int    // outcomes in that failed flush
	closed  bool
	kick    chan struct{}
	done    chan struct{}
}

func newRecorder(db *sql.DB, interval time.Duration, log *slog.Logger) *recorder {
	r := &recorder{db: db, interval: interval, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
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

// wait blocks until the outcome with ticket t is committed. It returns
// the flush error if that outcome could not be written.
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
		if r.closed {
			return ErrClosed
		}
		r.cond.Wait()
	}
	if r.err != nil && t <= r.errAt && t > r.errAt-uint64(r.errN) {
		return r.err
	}
	return nil
}

func (r *recorder) loop() {
	defer close(r.done)
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-r.kick:
		}
		r.mu.Lock()
		batch := r.pending
		r.pending = nil
		closed := r.closed
		r.mu.Unlock()
		if len(batch) > 0 {
			err := r.flush(batch)
			r.mu.Lock()
			r.flushed += uint64(len(batch))
			if err != nil {
				r.err, r.errAt, r.errN = err, r.flushed, len(batch)
				r.log.Error("record outcomes", "err", err, "count", len(batch))
			}
			r.cond.Broadcast()
			r.mu.Unlock()
		}
		if closed {
			r.mu.Lock()
			empty := len(r.pending) == 0
			r.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

func (r *recorder) flush(batch []outcome) error {
	var err error
	for try := range 5 {
		if err = r.flushOnce(batch); err == nil {
			return nil
		}
		time.Sleep(time.Duration(10<<try) * time.Millisecond)
	}
	return err
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

func (r *recorder) flushOnce(batch []outcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	buf := make([]byte, 0, 64+len(batch)*96)
	buf = append(buf, '[')
	for i, o := range batch {
		if i > 0 {
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
	buf = append(buf, ']')
	if r.stmt == nil {
		// Compiled once: an UPDATE … FROM costs more to prepare than to
		// run for a small group.
		st, err := r.db.PrepareContext(ctx, qRecord)
		if err != nil {
			return fmt.Errorf("queue: record %d outcomes: %w", len(batch), err)
		}
		r.stmt = st
	}
	if _, err := r.stmt.ExecContext(ctx, string(buf), time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("queue: record %d outcomes: %w", len(batch), err)
	}
	return nil
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
	if r.stmt != nil {
		r.stmt.Close()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return errors.Join(errors.New("queue: some outcomes were not recorded"), r.err)
	}
	return nil
}
