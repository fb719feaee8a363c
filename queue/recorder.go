package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
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

func (r *recorder) flushOnce(batch []outcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("queue: record outcomes: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `UPDATE deliveries SET status = ?, permanent = ?, reply = ?, updated_at = ?
		WHERE send_id = ? AND subscriber_id = ? AND claim = ?`)
	if err != nil {
		return fmt.Errorf("queue: record outcomes: %w", err)
	}
	defer st.Close()
	now := time.Now().UnixMilli()
	for _, o := range batch {
		if _, err := st.ExecContext(ctx, o.status, o.permanent, o.reply, now, o.sendID, o.subID, o.claim); err != nil {
			return fmt.Errorf("queue: record outcome of send %d subscriber %d: %w", o.sendID, o.subID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("queue: record outcomes: %w", err)
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
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return errors.Join(errors.New("queue: some outcomes were not recorded"), r.err)
	}
	return nil
}
