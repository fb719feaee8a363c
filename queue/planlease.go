package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// The planning's lease (migration 0010): like a batch's, in sends.

// qClaimPlan takes a send's planning for a run, under a lease until ?2,
// unless another run holds it under a live lease.
const qClaimPlan = `UPDATE sends SET plan_claim = ?1, plan_lease_until = ?2
	WHERE id = ?3 AND (plan_claim = '' OR plan_claim LIKE 'reclaim:%' OR plan_lease_until <= ?4)`

// claimPlan takes the planning of send id for the run token and returns
// the end of its lease; errBusy if another run holds it.
func (s *Service) claimPlan(ctx context.Context, id int64, token string) (int64, error) {
	now := s.cfg.Now()
	until := now.Add(s.cfg.LeaseTTL).UnixMilli()
	res, err := s.db.ExecContext(ctx, qClaimPlan, token, until, id, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("queue: claim the planning of send %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
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

// checkPlanClaim fails with errLeaseLost, inside a page's write
// transaction, if the planning run in ctx no longer holds the send's
// planning: another run took it over, and two planners must not record
// pages side by side.
func checkPlanClaim(ctx context.Context, tx *sql.Tx, sendID int64) error {
	run := planRunOf(ctx)
	if run == nil {
		return nil
	}
	var claim string
	if err := tx.QueryRowContext(ctx, `SELECT plan_claim FROM sends WHERE id = ?`, sendID).Scan(&claim); err != nil {
		return err
	}
	if claim != run.claim {
		return errLeaseLost
	}
	return nil
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

// qLapsedPlans lists the sends being planned whose planning's lease lapsed.
const qLapsedPlans = `SELECT id, uid, plan_claim, plan_lease_until FROM sends
	WHERE state = 'planning' AND plan_lease_until > 0 AND plan_lease_until < ?`

// qTakeOverPlan hands a planning whose lease lapsed to a new task.
const qTakeOverPlan = `UPDATE sends SET plan_claim = ?1, plan_lease_until = ?2
	WHERE id = ?3 AND plan_claim = ?4 AND plan_lease_until = ?5 AND state = 'planning'`

// reclaimLapsedPlans re-enqueues the plannings whose runs died, as
// reclaimLapsed does for batches, and returns how many it took over.
func (s *Service) reclaimLapsedPlans(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	type lapsedPlan struct {
		id         int64
		uid, claim string
		until      int64
	}
	rows, err := s.db.QueryContext(ctx, qLapsedPlans, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("queue: lapsed plannings: %w", err)
	}
	var found []lapsedPlan
	for rows.Next() {
		var l lapsedPlan
		if err := rows.Scan(&l.id, &l.uid, &l.claim, &l.until); err != nil {
			rows.Close()
			return 0, fmt.Errorf("queue: lapsed plannings: %w", err)
		}
		found = append(found, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("queue: lapsed plannings: %w", err)
	}
	n := 0
	for _, l := range found {
		claim := l.claim
		if !strings.HasPrefix(claim, reclaimPrefix) {
			claim = reclaimPrefix + l.claim
		}
		taskID := "plan:" + sendRef(l.id, l.uid) + "~" + strings.TrimPrefix(claim, reclaimPrefix)
		wait := now.Add(pickupGrace).UnixMilli()
		if claim == l.claim { // taken over before: is its task still waiting?
			ok, err := s.tasksExist(ctx, taskID)
			if err != nil {
				return n, err
			}
			if ok[0] {
				if _, err := s.db.ExecContext(ctx, qTakeOverPlan, claim, wait, l.id, l.claim, l.until); err != nil {
					return n, fmt.Errorf("queue: reclaim the planning of send %d: %w", l.id, err)
				}
				continue
			}
		}
		res, err := s.db.ExecContext(ctx, qTakeOverPlan, claim, wait, l.id, l.claim, l.until)
		if err != nil {
			return n, fmt.Errorf("queue: reclaim the planning of send %d: %w", l.id, err)
		}
		if k, _ := res.RowsAffected(); k == 0 {
			continue // another worker was first, or the run lives
		}
		t, err := NewPlanTask(l.id, l.uid, asynq.TaskID(taskID), asynq.Retention(s.cfg.Retention), asynq.MaxRetry(10),
			asynq.Timeout(time.Hour))
		if err != nil {
			return n, err
		}
		if _, err := s.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return n, fmt.Errorf("queue: reclaim the planning of send %d: %w", l.id, err)
		}
		s.log.WarnContext(ctx, "planning of a dead worker re-enqueued", "send_id", l.id,
			"lapsed_for", now.Sub(time.UnixMilli(l.until)).Round(time.Millisecond))
		n++
	}
	return n, nil
}
