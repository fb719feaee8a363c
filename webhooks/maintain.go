package webhooks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Upkeep of the outbox
//
// The database is the truth and Redis holds only the work in progress. A
// delivery whose task Redis lost (a flushed or replaced Redis, a snapshot
// restored from before it was queued) would stay pending for ever, so
// every worker's Run reconciles, every Config.MaintainEvery, the pending
// deliveries untouched for Config.ReconcileAfter with their tasks: one
// whose task is missing is queued again under the same task id, with the
// same webhook-id. Task ids are deterministic (webhook:<delivery>, or the
// replay's id, kept in the delivery's row), so a task that exists is never
// doubled, and a delivery already delivered when its re-created task runs
// is skipped. Delivery stays at least once across the loss of Redis.
//
// The same round trims the log: delivered deliveries older than
// Config.KeepLog go, with their attempts, and then the events that have no
// delivery left.

// Reconcile queues again the pending deliveries to enabled endpoints,
// untouched for Config.ReconcileAfter, whose task Redis no longer holds,
// and returns how many it queued.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	if s.rdb == nil {
		return 0, ErrNoRedis
	}
	before := s.cfg.Now().Add(-s.cfg.ReconcileAfter)
	// A client of its own: Asynq's client registers a queue in Redis only
	// the first time it uses it, and an emptied Redis no longer knows the
	// queue (the Inspector and the console would not see its tasks).
	var client *asynq.Client
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	n := 0
	var after int64
	for {
		page, err := s.store.Pending(ctx, before, after, 500)
		if err != nil {
			return n, fmt.Errorf("webhooks: reconcile: %w", err)
		}
		if len(page) == 0 {
			return n, nil
		}
		after = page[len(page)-1].ID
		ids := make([]string, len(page))
		for i, d := range page {
			ids[i] = d.TaskID
			if ids[i] == "" {
				ids[i] = taskIDOf(d.ID)
			}
		}
		exist, err := s.tasksExist(ctx, ids)
		if err != nil {
			return n, fmt.Errorf("webhooks: reconcile: %w", err)
		}
		for i, d := range page {
			if exist[i] {
				continue
			}
			if client == nil {
				client = asynq.NewClientFromRedisClient(s.rdb)
			}
			if err := s.enqueueWith(ctx, client, d.ID, ids[i]); err != nil {
				return n, err
			}
			n++
		}
	}
}

// taskKey is the Redis key of an Asynq task (asynq's base.TaskKey, which
// Asynq itself checks for a task id conflict); TestReconcileLeavesQueuedTasks
// checks that it finds the tasks Asynq enqueues.
func taskKey(id string) string { return "asynq:{" + Queue + "}:t:" + id }

// tasksExist reports, for each task id on the webhooks queue, whether
// Redis holds its task (pending, active, scheduled, waiting for a retry or
// archived), in one round trip.
func (s *Service) tasksExist(ctx context.Context, ids []string) ([]bool, error) {
	cmds := make([]*redis.IntCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Exists(ctx, taskKey(id))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look for tasks in Redis: %w", err)
	}
	out := make([]bool, len(ids))
	for i, c := range cmds {
		out[i] = c.Val() > 0
	}
	return out, nil
}

// Trim deletes the delivered deliveries last changed more than
// Config.KeepLog ago (their attempts with them) and then the events left
// without a delivery, and says how many of each went. Pending and failed
// deliveries are kept: the one still on its way, the other for the
// editor to see and replay.
func (s *Service) Trim(ctx context.Context) (deliveries, events int64, err error) {
	return s.store.Trim(ctx, s.cfg.Now().Add(-s.cfg.KeepLog))
}

// maintain reconciles and trims now and then every MaintainEvery (with
// jitter, so that the workers' rounds spread) until ctx ends.
func (s *Service) maintain(ctx context.Context) {
	every := s.cfg.MaintainEvery
	for d := time.Duration(0); ; d = every*3/4 + rand.N(every/4+1) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		n, err := s.Reconcile(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "webhook reconcile: will try again", "err", err)
		}
		if n > 0 {
			s.log.WarnContext(ctx, "webhook deliveries missing from Redis queued again", "deliveries", n)
		}
		nd, ne, err := s.Trim(ctx)
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			s.log.WarnContext(ctx, "webhook log trim: will try again", "err", err)
		}
		if nd+ne > 0 {
			s.log.InfoContext(ctx, "webhook log trimmed", "deliveries", nd, "events", ne)
		}
	}
}
