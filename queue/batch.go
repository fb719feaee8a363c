package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
)

// A batch task runs as a sequence of named steps, each a method below:
//
//	openBatch      decode the task, load its send, check the send may run
//	claimBatch     take the batch under a fresh claim and lease
//	loadReaders    read the claimed readers (and start watching changes)
//	takeSender     wait for one of the process's sending slots
//	deliver        for each row: mayGo (recheck), copyFor, hand, settle
//	drain          read the last replies, wait until outcomes are committed
//	conclude       pause, stop, retry or end the batch (endEmpty: no open row)
//
// The guarantees of docs/design/delivery.md hold step by step: no copy is
// handed to the relay unless the run's lease is valid (mayGo), every
// outcome is recorded under the run's claim (settle, via the recorder),
// and the batch ends only once every outcome of the run is committed
// (drain before conclude).

// batchJob is one run of a batch task: what it claimed and what happened
// to its copies so far. It lives for one handleBatch call and is used by
// one goroutine (a Stream calls back on the caller's goroutine).
type batchJob struct {
	s      *Service
	p      BatchPayload
	sc     *sendCache
	log    *slog.Logger
	mx     Metrics
	token  string    // the run's claim
	lease  *batchRun // the claim's lease, renewed by s.leases
	margin time.Duration

	rows  []claimed            // open deliveries, in key order
	watch *readerWatch         // changes to the readers since loadReaders
	byID  map[int64]*Recipient // current readers; absent: not active

	stream Stream // nil: the Sender sends one copy at a time

	last       uint64    // recorder ticket of the run's last outcome
	final      int       // rows given a final outcome (not retry)
	fails0     uint64    // the recorder's failed commits before the first copy
	temp       int       // copies to retry (temporary failures)
	policy     string    // the first policy refusal (5.7.x): the send pauses
	lastCheck  time.Time // last state check; zero: check before the first copy
	stopReason error     // why the run stopped early; nil: it did not
}

// handleBatch runs one batch task (TypeSendBatch). Copies go out only
// under the run's claim and a valid lease; each relay answer becomes one
// outcome, recorded under that claim; a row left without an outcome (a
// stop part way) stays open for the task's next run.
func (s *Service) handleBatch(ctx context.Context, t *asynq.Task) error {
	b, err := s.openBatch(ctx, t)
	if b == nil || err != nil {
		return err
	}
	if err := b.claimBatch(ctx); err != nil {
		return err
	}
	defer s.leases.release(b.lease)
	if len(b.rows) == 0 {
		return b.endEmpty(ctx)
	}
	if err := b.loadReaders(ctx); err != nil {
		return err
	}
	release, err := b.takeSender(ctx)
	if err != nil {
		return err
	}
	defer release()
	b.fails0 = s.rec.failures()
	if ss, ok := s.deps.Sender.(StreamSender); ok {
		b.stream = ss.Stream()
		defer b.closeStream(ctx) // should deliver panic
	}
	b.deliver(ctx)
	if err := b.drain(ctx); err != nil {
		return err
	}
	return b.conclude(ctx)
}

// openBatch decodes the task and loads its send. It returns nil and no
// error when the send is over (done, cancelled, failed): the task has
// nothing to do. It returns errPaused for a paused or not yet started
// send, and an error wrapping asynq.SkipRetry for a task that can never
// run (bad payload, unknown send, a stale task of a send re-created with
// another uid). Nothing is claimed yet.
func (s *Service) openBatch(ctx context.Context, t *asynq.Task) (*batchJob, error) {
	b := &batchJob{s: s, mx: s.deps.Metrics}
	if err := b.p.UnmarshalBinary(t.Payload()); err != nil {
		return nil, errPayload(TypeSendBatch, err)
	}
	if err := s.halted(); err != nil {
		return nil, err
	}
	attempt, _ := asynq.GetRetryCount(ctx)
	b.log = s.log.With("send_id", b.p.SendID, "batch", b.p.Batch, "attempt", attempt)
	sc, st, err := s.loadSend(ctx, b.p.SendID)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("batch: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return nil, err
	}
	if sc.snd.UID != b.p.UID {
		return nil, fmt.Errorf("batch: send %d has another uid (stale task): %w", b.p.SendID, asynq.SkipRetry)
	}
	switch st {
	case Paused, Scheduled:
		return nil, errPaused
	case Done, Cancelled, Failed:
		return nil, nil
	}
	if s.deps.Sender == nil {
		return nil, errors.New("queue: this process has no Sender")
	}
	b.sc = sc
	return b, nil
}

// claimBatch takes the batch under a fresh claim (see Service.claim) and
// registers its lease with the process's leaser, which renews it until
// handleBatch releases it. From here on, only this run's outcomes count
// for the batch; errBusy if another run holds it under a live lease.
func (b *batchJob) claimBatch(ctx context.Context) error {
	b.token = newToken()
	rows, until, err := b.s.claim(ctx, &b.p, b.token)
	if err != nil {
		return err
	}
	b.rows = rows
	b.lease = b.s.leases.add(b.p.SendID, b.p.Batch, b.token, until, nil)
	b.margin = leaseMargin(b.s.cfg.LeaseTTL)
	return nil
}

// loadReaders reads the claimed rows' readers from the Directory. The
// change watch starts before the read, so a change in between is seen at
// the first recheck.
func (b *batchJob) loadReaders(ctx context.Context) error {
	ids := make([]int64, len(b.rows))
	for i, r := range b.rows {
		ids[i] = r.SubscriberID
	}
	watch, err := b.s.watchReaders(ctx, b.sc.snd.List)
	if err != nil {
		return fmt.Errorf("queue: batch %d of send %d: %w", b.p.Batch, b.p.SendID, err)
	}
	recips, err := b.s.deps.Directory.Lookup(ctx, b.sc.snd.List, ids)
	if err != nil {
		return fmt.Errorf("queue: batch %d of send %d: look up recipients: %w", b.p.Batch, b.p.SendID, err)
	}
	byID := make(map[int64]*Recipient, len(recips))
	for i := range recips {
		byID[recips[i].ID] = &recips[i]
	}
	b.watch, b.byID = watch, byID
	return nil
}

// takeSender waits for one of the process's sending slots (Config.Senders)
// and returns its release; with no cap it returns at once. The lease is
// renewed meanwhile, and the first copy rechecks the send's state.
func (b *batchJob) takeSender(ctx context.Context) (release func(), err error) {
	if b.s.senders == nil {
		return func() {}, nil
	}
	select {
	case b.s.senders <- struct{}{}:
		return func() { <-b.s.senders }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// deliver hands the batch's copies to the relay in row order until the
// rows run out or the run must stop (b.stopReason, or a policy refusal in
// b.policy). Each copy is checked just before it goes: the run still
// holds its lease and the reader still wants it. Rows it gives no outcome
// stay open for the next run.
func (b *batchJob) deliver(ctx context.Context) {
	for i, c := range b.rows {
		if stop, why := b.mayGo(ctx, i); stop {
			b.stopReason = why
			return
		}
		msg, r, err := b.copyFor(ctx, c)
		if err != nil {
			b.stopReason = err
			return
		}
		if msg == nil {
			continue // recorded as skipped or failed
		}
		b.hand(ctx, c, r, msg)
		if b.policy != "" || b.stopReason != nil {
			return
		}
	}
}

// mayGo reports whether the run must stop before the copy of b.rows[i],
// and why: the worker is shutting down or halted, outcomes wait to be
// recorded (a full disk: no copy goes until they are), the lease is no
// longer valid with margin to spare (another run may hold the batch now:
// errLeaseLost), or recheck says so.
func (b *batchJob) mayGo(ctx context.Context, i int) (stop bool, why error) {
	if err := ctx.Err(); err != nil {
		return true, err
	}
	if err := b.s.halted(); err != nil {
		return true, err
	}
	if err := b.s.rec.ready(ctx); err != nil {
		return true, err
	}
	now := b.s.cfg.Now()
	if !b.lease.valid(now, b.margin) {
		return true, errLeaseLost
	}
	return b.recheck(ctx, i, now)
}

// recheck looks at the send's state and the readers' changes, at most
// every stateCheckEvery: a pause stops the run with errPaused, a cancel
// stops it with no error (the cancel settled the open rows), and readers
// of b.rows[i:] who unsubscribed or changed their preferences since the
// last look are read again, so their copies follow the change.
func (b *batchJob) recheck(ctx context.Context, i int, now time.Time) (stop bool, why error) {
	if now.Sub(b.lastCheck) <= stateCheckEvery {
		return false, nil
	}
	b.lastCheck = now
	st, err := b.s.currentState(ctx, b.p.SendID)
	if err != nil {
		return true, err
	}
	switch st {
	case Paused:
		return true, errPaused
	case Cancelled:
		return true, nil
	}
	if _, err := b.watch.refresh(ctx, b.rows[i:], b.byID); err != nil {
		return true, err
	}
	return false, nil
}

// copyFor builds row c's copy. A reader no longer subscribed, or left
// with nothing to read under the send's filter, is recorded as skipped; a
// copy that cannot be built is recorded as failed; both return a nil
// message. An error (the variant does not render) stops the run with the
// row left open.
func (b *batchJob) copyFor(ctx context.Context, c claimed) (*Message, *Recipient, error) {
	r := b.byID[c.SubscriberID]
	if r == nil || !r.Active {
		b.record(c, "skipped", false, "not subscribed at delivery time")
		return nil, nil, nil
	}
	prefs := effective(r.Prefs, b.sc.snd.Filter)
	key := b.sc.vs.key(prefs)
	if key == "" {
		b.record(c, "skipped", false, "nothing to read at delivery time")
		return nil, nil, nil
	}
	rendered, err := b.s.render(ctx, b.sc, key, prefs)
	if err != nil {
		return nil, nil, err
	}
	msg, err := b.s.newsletterMessage(b.sc, r, rendered)
	if err != nil {
		b.record(c, "failed", true, "build: "+err.Error())
		b.log.Error("build message", "subscriber_id", r.ID, "err", err)
		return nil, nil, nil
	}
	return msg, r, nil
}

// hand gives msg to the relay: on the batch's stream, whose answer comes
// back during this or a later Send or at Close, or with one Send. Either
// way settle records the answer.
func (b *batchJob) hand(ctx context.Context, c claimed, r *Recipient, msg *Message) {
	t0 := time.Now()
	if b.stream != nil {
		b.stream.Send(ctx, msg, func(reply string, err error) {
			b.mx.RelayReply(time.Since(t0))
			b.settle(ctx, c, r, reply, err)
		})
		return
	}
	reply, err := b.s.deps.Sender.Send(ctx, msg)
	b.mx.RelayReply(time.Since(t0))
	b.settle(ctx, c, r, reply, err)
}

// settle records the relay's answer for row c (reader r) by its class
// (docs/design/delivery.md, "Relay replies"). A copy whose fate is
// unknown (a temporary failure while shutting down) and one that never
// left (the relay unavailable) get no outcome: their rows stay open and
// the run stops.
func (b *batchJob) settle(ctx context.Context, c claimed, r *Recipient, reply string, err error) {
	if err == nil {
		b.record(c, "sent", false, reply)
		b.mx.CopySent(KindIssue)
		return
	}
	class := b.s.deps.Classify(err)
	if ctx.Err() != nil && class == Temporary {
		// Shutting down mid-send: the copy may or may not have gone;
		// leave the row claimed so the re-run decides (at most the
		// copies in flight are sent twice).
		b.stopOnce(ctx.Err())
		return
	}
	switch class {
	case Temporary:
		b.settleTemporary(c, r, err)
	case BadMailbox:
		b.record(c, "failed", true, err.Error())
		b.mx.CopyFailed(KindIssue, class)
		if err := b.s.deps.Directory.MarkBounced(context.WithoutCancel(ctx), r.ID, err.Error()); err != nil {
			b.log.Error("mark bounced", "subscriber_id", r.ID, "err", err)
		}
	case Unavailable:
		// The relay could not be reached: nothing was sent. The row
		// stays open, its attempts untouched; the batch stops and
		// runs again after RelayRetry.
		b.mx.CopyRetried(KindIssue, class)
		b.stopOnce(fmt.Errorf("batch %d of send %d: %w: %w", b.p.Batch, b.p.SendID, errRelayDown, err))
	case Policy:
		if b.policy != "" {
			// A copy that was in flight behind the first refusal:
			// left open, so it goes again when the editor resumes.
			return
		}
		b.record(c, "failed", true, err.Error())
		b.mx.CopyFailed(KindIssue, class)
		b.policy = err.Error()
	default:
		b.record(c, "failed", true, err.Error())
		b.mx.CopyFailed(KindIssue, class)
	}
}

// settleTemporary records a temporary failure: a retry, or a final
// failure once the row has had Config.MaxAttempts attempts.
func (b *batchJob) settleTemporary(c claimed, r *Recipient, err error) {
	if c.Attempts+1 >= b.s.cfg.MaxAttempts { // attempts before this one
		b.record(c, "failed", false, err.Error())
		b.mx.CopyFailed(KindIssue, Temporary)
		b.log.Warn("delivery failed after retries", "subscriber_id", r.ID, "attempts", c.Attempts, "err", err)
		return
	}
	b.record(c, "retry", false, err.Error())
	b.mx.CopyRetried(KindIssue, Temporary)
	b.temp++
}

// stopOnce keeps the first reason the run stopped.
func (b *batchJob) stopOnce(err error) {
	if b.stopReason == nil {
		b.stopReason = err
	}
}

// record hands row c's outcome to the recorder, under the run's claim;
// the recorder commits it only while that claim stands and the row is
// open.
func (b *batchJob) record(c claimed, status string, perm bool, reply string) {
	if status != "retry" {
		b.final++
	}
	b.last = b.s.rec.add(outcome{SendID: b.p.SendID, SubscriberID: c.SubscriberID, Batch: b.p.Batch, Claim: b.token,
		Status: status, Permanent: perm, Reply: reply, First: c.Attempts == 0})
}

// closeStream waits (up to drainTimeout, even when ctx is done) for the
// replies of the copies still in flight, records them, and releases the
// connection. It does nothing once the stream is closed.
func (b *batchJob) closeStream(ctx context.Context) {
	if b.stream == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	b.stream.Close(dctx)
	cancel()
	b.stream = nil
}

// drain settles the copies in flight and waits until every outcome of
// the run is committed, even when ctx is done. It fails if a group commit
// failed meanwhile: some outcomes may be lost, and their rows, still
// open, go again in the task's next run.
func (b *batchJob) drain(ctx context.Context) error {
	b.closeStream(ctx)
	if err := b.s.rec.wait(context.WithoutCancel(ctx), b.last); err != nil {
		return fmt.Errorf("queue: batch %d of send %d: %w", b.p.Batch, b.p.SendID, err)
	}
	if b.s.rec.failures() != b.fails0 {
		return fmt.Errorf("queue: batch %d of send %d: some outcomes may not have been recorded, will run again", b.p.Batch, b.p.SendID)
	}
	return nil
}

// conclude decides the task's result once the run's outcomes are
// committed: a policy refusal pauses the send (errPaused), an early stop
// returns its reason, temporary failures return an error so that Asynq
// retries the batch, and otherwise the batch ends.
func (b *batchJob) conclude(ctx context.Context) error {
	if b.policy != "" {
		reason := "relay refused a message for policy or authentication reasons (5.7.x): " + b.policy
		if err := b.s.pause(context.WithoutCancel(ctx), b.p.SendID, reason); err != nil && !errors.Is(err, ErrState) {
			return err
		}
		b.log.Warn("send paused by a policy refusal", "reply", b.policy)
		return errPaused
	}
	if b.stopReason != nil {
		return b.stopReason
	}
	if b.temp > 0 {
		return fmt.Errorf("batch %d of send %d: %d temporary failures, will retry", b.p.Batch, b.p.SendID, b.temp)
	}
	// The outcomes are committed: the batch's end is written even when
	// the worker is shutting down.
	if err := b.s.finishBatch(context.WithoutCancel(ctx), &b.p, b.token, b.final == len(b.rows)); err != nil {
		return err
	}
	return b.s.maybeFinish(ctx, b.p.SendID)
}

// endEmpty ends a batch whose claim found no open row (an earlier run
// finished them): done under this run's claim, and the send done if it
// was its last open batch.
func (b *batchJob) endEmpty(ctx context.Context) error {
	if err := b.s.finishBatch(ctx, &b.p, b.token, false); err != nil {
		return err
	}
	return b.s.maybeFinish(ctx, b.p.SendID)
}
