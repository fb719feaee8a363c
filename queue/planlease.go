package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// The planning's lease (migration 0010): like a batch's, in sends.

// claimPlan takes the planning of send id for the run token and returns
// the end of its lease; errBusy if another run holds it.
func (s *Service) claimPlan(ctx context.Context, id int64, token string) (int64, error) {
	now := s.cfg.Now()
	until := now.Add(s.cfg.LeaseTTL).UnixMilli()
	ok, err := s.ledger.ClaimPlan(ctx, id, token, now, until)
	if err != nil {
		return 0, fmt.Errorf("queue: claim the planning of send %d: %w", id, err)
	}
	if !ok {
		return 0, errBusy
	}
	return until, nil
}

// planRunKey carries the planning's run in the context of Plan, so that
// each page of deliveries is recorded only while the run's claim stands.
type planRunKey struct{}

// planRunOf returns the planning run in ctx, nil for a Plan called
// directly (tests, tools).
func planRunOf(ctx context.Context) *batchRun {
	r, _ := ctx.Value(planRunKey{}).(*batchRun)
	return r
}

// planUnderLease runs Plan for a planning task under a lease on the
// send's planning, renewed while it runs; should the lease lapse or be
// taken over, Plan is stopped (errLeaseLost).
func (s *Service) planUnderLease(ctx context.Context, id int64) error {
	token := newToken()
	until, err := s.claimPlan(ctx, id, token)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	run := s.leases.add(id, planBatch, token, until, func() { cancel(errLeaseLost) })
	defer s.leases.release(run)
	go func() { // a lease not renewed in time stops the planning too
		margin := leaseMargin(s.cfg.LeaseTTL)
		t := time.NewTicker(s.cfg.LeaseTTL / 6)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				if !run.valid(s.cfg.Now(), margin) {
					cancel(errLeaseLost)
					return
				}
			}
		}
	}()
	_, err = s.Plan(context.WithValue(pctx, planRunKey{}, run), id)
	if errors.Is(context.Cause(pctx), errLeaseLost) || errors.Is(err, errLeaseLost) {
		return errLeaseLost
	}
	return err
}

// reclaimLapsedPlans re-enqueues the plannings whose runs died, as
// reclaimLapsed does for batches, and returns how many it took over.
func (s *Service) reclaimLapsedPlans(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	found, err := s.ledger.LapsedPlans(ctx, now)
	if err != nil {
		return 0, fmt.Errorf("queue: lapsed plannings: %w", err)
	}
	n := 0
	for _, l := range found {
		claim := l.Claim
		if !strings.HasPrefix(claim, reclaimPrefix) {
			claim = reclaimPrefix + l.Claim
		}
		taskID := "plan:" + sendRef(l.ID, l.UID) + "~" + strings.TrimPrefix(claim, reclaimPrefix)
		wait := now.Add(pickupGrace).UnixMilli()
		if claim == l.Claim { // taken over before: is its task still waiting?
			ok, err := s.tasksExist(ctx, taskID)
			if err != nil {
				return n, err
			}
			if ok[0] {
				if _, err := s.ledger.TakeOverPlan(ctx, l, claim, wait); err != nil {
					return n, fmt.Errorf("queue: reclaim the planning of send %d: %w", l.ID, err)
				}
				continue
			}
		}
		ok, err := s.ledger.TakeOverPlan(ctx, l, claim, wait)
		if err != nil {
			return n, fmt.Errorf("queue: reclaim the planning of send %d: %w", l.ID, err)
		}
		if !ok {
			continue // another worker was first, or the run lives
		}
		t, err := NewPlanTask(l.ID, l.UID, asynq.TaskID(taskID), asynq.Retention(s.cfg.Retention), asynq.MaxRetry(10),
			asynq.Timeout(time.Hour))
		if err != nil {
			return n, err
		}
		if _, err := s.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return n, fmt.Errorf("queue: reclaim the planning of send %d: %w", l.ID, err)
		}
		s.log.WarnContext(ctx, "planning of a dead worker re-enqueued", "send_id", l.ID,
			"lapsed_for", now.Sub(time.UnixMilli(l.Until)).Round(time.Millisecond))
		n++
	}
	return n, nil
}
