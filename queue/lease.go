package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
)

// Batch leases
//
// A run of a batch holds the batch's claim under a lease in batch_claims:
// its process renews lease_until every LeaseTTL/3, and the run sends a
// copy only while the lease it last renewed is valid. When the process
// dies, the lease lapses; every worker's watchdog (Server.Run) looks for
// lapsed leases every LeaseTTL/3, takes the batch over with one
// conditional write (so one worker does it), and enqueues it again under
// a new TaskID. Asynq's own recovery of the dead worker's task, a minute
// later, finds the batch done or held by the new run: its run records
// nothing (outcomes count only under the current claim) and waits, then
// ends.
//
// A run claims a batch only if no live lease holds it, so two runs of a
// batch never send at once: a second task for a running batch (the
// recovered orphan, or a task re-created after Redis lost its data)
// waits like a paused batch until the first run ends.

// errBusy: another run holds the batch under a live lease. The task
// waits (not counted as a failure) and looks again.
var errBusy = fmt.Errorf("batch held by another run: %w", errPaused)

// errLeaseLost: the run's lease lapsed or another run took the batch
// over; it stops sending and Asynq runs the task again after
// Config.PauseRecheck, without counting a failure.
var errLeaseLost = errors.New("the batch's lease lapsed or was taken over; stopped sending")

// leaseMargin is how long before its lease runs out a run stops sending,
// for the clocks of two machines that differ a little.
func leaseMargin(ttl time.Duration) time.Duration { return ttl / 6 }

// planBatch is the batch number of a send's planning run: the leaser
// renews its lease in sends (plan_claim, plan_lease_until) instead of in
// batch_claims.
const planBatch = -1

// batchRun is one running batch (or planning, batch planBatch) whose
// lease this process renews.
type batchRun struct {
	sendID, batch int64
	claim         string
	// until is the end of the lease (Unix ms) as last written; 0 once
	// the claim was found taken over.
	until atomic.Int64
	// lost, if set, is called once the lease is found taken over.
	lost func()
}

// ref names the run's lease for the Ledger.
func (r *batchRun) ref() LeaseRef { return LeaseRef{SendID: r.sendID, Batch: r.batch, Claim: r.claim} }

// valid reports whether the run may still hand a copy to the relay.
func (r *batchRun) valid(now time.Time, margin time.Duration) bool {
	return now.UnixMilli() < r.until.Load()-margin.Milliseconds()
}

// leaser renews the leases of this process's running batches.
type leaser struct {
	ledger  Ledger
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
	trouble *storeTrouble // told of each failed renewal (nil: nobody)

	mu    sync.Mutex
	runs  map[*batchRun]struct{}
	start sync.Once
	stop  chan struct{}
	done  chan struct{}
}

func newLeaser(ledger Ledger, ttl time.Duration, now func() time.Time, log *slog.Logger) *leaser {
	return &leaser{ledger: ledger, ttl: ttl, now: now, log: log, runs: map[*batchRun]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// add registers a run whose claim was written with lease end until;
// lost, if not nil, is called should another run take its work over.
func (l *leaser) add(sendID, batch int64, claim string, until int64, lost func()) *batchRun {
	r := &batchRun{sendID: sendID, batch: batch, claim: claim, lost: lost}
	r.until.Store(until)
	l.start.Do(func() { go l.loop() })
	l.mu.Lock()
	l.runs[r] = struct{}{}
	l.mu.Unlock()
	return r
}

// release stops renewing r and ends its lease.
func (l *leaser) release(r *batchRun) {
	l.mu.Lock()
	delete(l.runs, r)
	l.mu.Unlock()
	if r.until.Load() == 0 {
		return // taken over: not ours to release
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.ledger.ReleaseLease(ctx, r.ref()); err != nil {
		// It lapses by itself; a watchdog then enqueues the batch again.
		l.log.Warn("release batch lease", "send_id", r.sendID, "batch", r.batch, "err", err)
	}
}

func (l *leaser) loop() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if err := l.renew(); err != nil {
			l.trouble.note()
			l.log.Warn("renew batch leases", "err", err)
		}
	}
}

// renew extends the lease of every running batch in one transaction. A
// run whose claim is gone is told so (its until becomes 0).
func (l *leaser) renew() error {
	l.mu.Lock()
	runs := make([]*batchRun, 0, len(l.runs))
	for r := range l.runs {
		runs = append(runs, r)
	}
	l.mu.Unlock()
	if len(runs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl)
	defer cancel()
	until := l.now().Add(l.ttl).UnixMilli()
	refs := make([]LeaseRef, len(runs))
	for i, r := range runs {
		refs[i] = r.ref()
	}
	lost, err := l.ledger.RenewLeases(ctx, refs, until)
	if err != nil {
		return err
	}
	for i, r := range runs {
		if lost[i] {
			if r.until.Swap(0) != 0 && r.lost != nil {
				r.lost()
			}
			l.log.Warn("batch taken over by another run", "send_id", r.sendID, "batch", r.batch)
		} else if r.until.Load() != 0 {
			r.until.Store(until)
		}
	}
	return nil
}

func (l *leaser) close() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	started := true
	l.start.Do(func() { started = false })
	if started {
		<-l.done
	}
}

// pickupGrace is how long a batch taken over from a dead run waits for
// its new task to claim it before a watchdog looks again: if the task is
// still in Redis (waiting its turn) the wait starts over, if it is gone
// the batch is enqueued once more.
const pickupGrace = 2 * time.Minute

// reclaimPrefix marks the claim of a batch taken over from a dead run and
// waiting for its new task: "reclaim:" and the dead run's claim, which
// also names the new task (reclaimTaskID). Any run may claim it.
const reclaimPrefix = "reclaim:"

// lapsed is a batch whose lease ran out.
type lapsed = Lapsed

// reclaimLapsed re-enqueues the batches whose runs died (their lease
// lapsed) and returns how many it took over. Every worker runs it; one
// conditional write decides which worker takes each batch.
func (s *Service) reclaimLapsed(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	found, err := s.ledger.LapsedLeases(ctx, now)
	if err != nil {
		return 0, fmt.Errorf("queue: lapsed leases: %w", err)
	}
	n := 0
	for _, l := range found {
		ok, err := s.reclaim(ctx, l, now)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// reclaim takes over one lapsed batch and enqueues it under a TaskID of
// its own with its open rows; a batch with none left is marked done
// instead. A batch whose new task has not claimed it within pickupGrace
// is enqueued again only if that task is no longer in Redis.
func (s *Service) reclaim(ctx context.Context, l lapsed, now time.Time) (bool, error) {
	wrap := func(err error) error {
		return fmt.Errorf("queue: reclaim batch %d of send %d: %w", l.Batch, l.SendID, err)
	}
	claim := l.Claim
	if !strings.HasPrefix(claim, reclaimPrefix) {
		claim = reclaimPrefix + l.Claim
	}
	taskID := reclaimTaskID(l.SendID, l.UID, l.Batch, claim)
	if claim == l.Claim { // taken over before: is its task still waiting?
		ok, err := s.tasksExist(ctx, taskID)
		if err != nil {
			return false, wrap(err)
		}
		if ok[0] {
			if _, _, err := s.ledger.TakeOver(ctx, l, claim, now.Add(pickupGrace).UnixMilli(), false); err != nil {
				return false, wrap(err)
			}
			return false, nil
		}
	}
	ok, ids, err := s.ledger.TakeOver(ctx, l, claim, now.Add(pickupGrace).UnixMilli(), true)
	if err != nil {
		return false, wrap(err)
	}
	if !ok {
		return false, nil // another worker was first, or the run lives
	}
	if len(ids) == 0 {
		return true, s.maybeFinish(ctx, l.SendID)
	}
	// Should the enqueue fail, the pickup wait lapses and a watchdog
	// tries once more.
	p := BatchPayload{SendID: l.SendID, UID: l.UID, Batch: l.Batch, IDs: ids}
	t, err := NewBatchTask(p, append(s.batchOpts(), asynq.TaskID(taskID))...)
	if err != nil {
		return false, wrap(err)
	}
	if _, err := s.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, wrap(err)
	}
	s.log.WarnContext(ctx, "batch of a dead worker re-enqueued", "send_id", l.SendID, "batch", l.Batch,
		"open", len(ids), "lapsed_for", now.Sub(time.UnixMilli(l.Until)).Round(time.Millisecond))
	return true, nil
}

// reclaimTaskID is the TaskID of a batch enqueued again by a watchdog,
// "batch:<send>.<uid>:<n>~<dead run's claim>": the batch's own TaskID may
// still be held by the dead worker's task.
func reclaimTaskID(sendID int64, uid string, batch int64, claim string) string {
	return BatchTaskID(sendID, uid, batch) + "~" + strings.TrimPrefix(claim, reclaimPrefix)
}

// runWatchdog re-enqueues the batches of dead runs every LeaseTTL/3
// (with jitter, so that the workers' rounds spread) until ctx ends.
func (s *Service) runWatchdog(ctx context.Context) {
	every := s.cfg.LeaseTTL / 3
	for {
		d := every/2 + rand.N(every/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		s.watchdogRound(ctx)
	}
}

// watchdogRound takes over the lapsed batches and plans, unless the store
// failed a write less than a lease period ago (see storeTrouble): then
// the leases may have lapsed only because nobody could renew them.
func (s *Service) watchdogRound(ctx context.Context) {
	if s.trouble.within(s.cfg.LeaseTTL) {
		return
	}
	if _, err := s.reclaimLapsedPlans(ctx); err != nil && ctx.Err() == nil {
		s.trouble.note()
		s.log.Warn("lease watchdog", "err", err)
	}
	if _, err := s.reclaimLapsed(ctx); err != nil && ctx.Err() == nil {
		s.trouble.note()
		s.log.Warn("lease watchdog", "err", err)
	}
}

// Halt stops this process's deliveries at once, for a fault that makes
// going on harmful (the database file deleted under the process, so that
// outcomes would be recorded where nobody reads them): running batches
// stop before their next copy (the copies in flight finish) and every
// task fails with reason, until the process ends. Asynq's graceful
// shutdown alone would let running batches finish.
func (s *Service) Halt(reason error) {
	if reason == nil {
		reason = errors.New("halted")
	}
	err := fmt.Errorf("queue: deliveries halted: %w", reason)
	s.halt.CompareAndSwap(nil, &err)
}

// halted returns Halt's error, nil if the process was not halted.
func (s *Service) halted() error {
	if p := s.halt.Load(); p != nil {
		return *p
	}
	return nil
}
