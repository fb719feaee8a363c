package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// outcome is the result of one delivery attempt (Outcome).
type outcome = Outcome

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
	ledger   Ledger
	interval time.Duration
	grace    time.Duration // closeGrace; tests shorten it
	log      *slog.Logger

	stalled atomic.Bool   // the last commit failed; outcomes wait
	trouble *storeTrouble // told of each failed commit (nil: nobody)

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

func newRecorder(ledger Ledger, interval time.Duration, log *slog.Logger) *recorder {
	r := &recorder{ledger: ledger, interval: interval, grace: closeGrace, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
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
				r.trouble.note()
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

func (r *recorder) flushOnce(batch []outcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.ledger.Record(ctx, batch, time.Now()); err != nil {
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
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return errors.Join(errors.New("queue: some outcomes were not recorded"), r.err)
	}
	return nil
}
