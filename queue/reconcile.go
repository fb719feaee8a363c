package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Reconciling Redis with the ledger
//
// The store is the truth; Redis only holds the work in progress. Should
// Redis lose tasks (replaced by an empty server, restored from an old
// snapshot, or the last second of an append-only file lost in a crash),
// a send would wait for ever. Every worker therefore compares, every
// Config.ReconcileInterval and when it starts, each unfinished send with
// its tasks in Redis and re-creates the missing ones from the store, with
// their original TaskIDs (so that a task that exists is never doubled),
// and `tayori send resume ID` does the same for one send on demand.
// Nothing is sent twice: a re-created task of a batch that is running
// waits for the run's lease (see lease.go), and a batch's finished
// deliveries are never sent again.

// Requeued says what Requeue re-created.
type Requeued struct {
	Plan     bool // the send's planning task (scheduled or planning sends)
	Batches  int  // batch tasks re-created
	Finished int  // batches without open deliveries, marked done
}

// Any reports whether Requeue found anything missing.
func (r Requeued) Any() bool { return r.Plan || r.Batches > 0 || r.Finished > 0 }

// Requeue re-creates the tasks of send id that Redis lacks, from the
// store: its planning task while it is scheduled or planning (at its
// time, for a send scheduled later), and the task of every batch not done
// (with the batch's open deliveries). A batch with none left is marked
// done, and a send whose batches are all done is finished. Tasks that
// exist are left alone. A send that is done or cancelled is ErrState.
func (s *Service) Requeue(ctx context.Context, id int64) (Requeued, error) {
	var r Requeued
	snd, err := s.getSend(ctx, id, false)
	if err != nil {
		return r, err
	}
	if snd.State.Final() {
		return r, fmt.Errorf("requeue send %d: it is %s: %w", id, snd.State, ErrState)
	}
	wrap := func(err error) error { return fmt.Errorf("queue: requeue send %d: %w", id, err) }
	st := snd.State
	if st == Paused {
		st = snd.pausedFrom
	}
	// Tasks are re-created through a client of their own: Asynq's client
	// registers a queue in Redis only the first time it uses it, and an
	// empty Redis no longer knows the queue (the Inspector, the console
	// and asynq's tools would not see it).
	var client *asynq.Client
	enqueue := func(t *asynq.Task) error {
		if client == nil {
			client = asynq.NewClientFromRedisClient(s.rdb)
		}
		if _, err := client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return err
		}
		return nil
	}
	if st == Scheduled || st == Planning {
		ok, err := s.tasksExist(ctx, "plan:"+sendRef(snd.ID, snd.UID))
		if err != nil {
			return r, wrap(err)
		}
		if !ok[0] {
			opts := []asynq.Option{asynq.Retention(s.cfg.Retention), asynq.MaxRetry(10), asynq.Timeout(time.Hour)}
			if snd.ScheduledAt.After(s.cfg.Now()) {
				opts = append(opts, asynq.ProcessAt(snd.ScheduledAt))
			}
			t, err := NewPlanTask(snd.ID, snd.UID, opts...)
			if err != nil {
				return r, err
			}
			if err := enqueue(t); err != nil {
				return r, wrap(err)
			}
			r.Plan = true
		}
	}
	type batchRange = BatchRange
	open, err := s.ledger.UnfinishedBatches(ctx, id)
	if err != nil {
		return r, wrap(err)
	}
	ids := make([]string, len(open))
	for i, b := range open {
		ids[i] = BatchTaskID(snd.ID, snd.UID, b.Batch)
	}
	exist, err := s.tasksExist(ctx, ids...)
	if err != nil {
		return r, wrap(err)
	}
	var (
		missing []batchRange
		byBatch map[int64][]int64 // open rows of the whole send, when some range is unknown
	)
	for i, b := range open {
		if !exist[i] {
			missing = append(missing, b)
			if b.Hi == 0 && byBatch == nil {
				if byBatch, err = s.openRowsByBatch(ctx, id); err != nil {
					return r, wrap(err)
				}
			}
		}
	}
	for _, b := range missing {
		var rowIDs []int64
		if b.Hi == 0 {
			rowIDs = byBatch[b.Batch]
		} else if rowIDs, err = s.ledger.OpenRowsOfBatch(ctx, id, b.Batch, b.Lo, b.Hi); err != nil {
			return r, wrap(err)
		}
		if len(rowIDs) == 0 {
			// Its last run died between its last outcome and marking it.
			if err := s.ledger.MarkBatchDone(ctx, id, b.Batch); err != nil {
				return r, wrap(err)
			}
			r.Finished++
			continue
		}
		t, err := NewBatchTask(BatchPayload{SendID: id, UID: snd.UID, Batch: b.Batch, IDs: rowIDs}, s.batchOpts()...)
		if err != nil {
			return r, err
		}
		if err := enqueue(t); err != nil {
			return r, wrap(err)
		}
		r.Batches++
	}
	if r.Any() {
		s.log.WarnContext(ctx, "tasks missing from Redis re-created from the store", "send_id", id, "state", snd.State,
			"plan", r.Plan, "batches", r.Batches, "finished_batches", r.Finished)
	}
	if snd.State == Sending {
		return r, s.maybeFinish(ctx, id)
	}
	return r, nil
}

// openRowsByBatch lists the open deliveries of a whole send by batch.
func (s *Service) openRowsByBatch(ctx context.Context, id int64) (map[int64][]int64, error) {
	return s.ledger.OpenRows(ctx, id)
}

// taskKey is the Redis key of an Asynq task (asynq's base.TaskKey, which
// Asynq itself checks for a TaskID conflict); TestRequeueFindsTasks checks
// that it finds the tasks Asynq enqueues.
func taskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// tasksExist reports, for each TaskID on the newsletter queue, whether
// Redis holds its task (pending, active, scheduled, waiting to be retried,
// archived or completed and retained), in one round trip.
func (s *Service) tasksExist(ctx context.Context, ids ...string) ([]bool, error) {
	out := make([]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.IntCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Exists(ctx, taskKey(QueueNewsletter, id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look for tasks in Redis: %w", err)
	}
	for i, c := range cmds {
		out[i] = c.Val() > 0
	}
	return out, nil
}

// Reconcile runs Requeue on every send that is not finished and returns
// the total of what it re-created.
func (s *Service) Reconcile(ctx context.Context) (Requeued, error) {
	var total Requeued
	ids, err := s.ledger.UnfinishedSends(ctx)
	if err != nil {
		return total, fmt.Errorf("queue: reconcile: %w", err)
	}
	var errs []error
	for _, id := range ids {
		r, err := s.Requeue(ctx, id)
		if err != nil && !errors.Is(err, ErrState) { // finished meanwhile: fine
			errs = append(errs, err)
			continue
		}
		total.Batches += r.Batches
		total.Finished += r.Finished
		total.Plan = total.Plan || r.Plan
	}
	return total, errors.Join(errs...)
}

// runReconciler runs Reconcile and ReconcileListMail now and then every ReconcileInterval
// (with jitter, so that the workers' rounds spread) until ctx ends.
func (s *Service) runReconciler(ctx context.Context) {
	every := s.cfg.ReconcileInterval
	d := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		if _, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile sends with Redis", "err", err)
		}
		if _, err := s.ReconcileListMail(ctx); err != nil && ctx.Err() == nil { // listmail.go
			s.log.Warn("reconcile list messages with Redis", "err", err)
		}
		d = every*3/4 + rand.N(every/4+1)
	}
}
