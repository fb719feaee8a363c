package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// PlanResult says what one run of planning did.
type PlanResult struct {
	Planned int64 // deliveries recorded by this run
	Skipped int64 // readers with nothing to read in this issue
	Batches int64 // batch tasks enqueued by this run
	// AlreadyHad counts the readers a send with Again left out: an
	// earlier send of the issue to the list gave them a copy.
	AlreadyHad int64
}

// planChunkBatches is how many batches one keyset page of recipients fills.
const planChunkBatches = 5

// Plan records the deliveries of a send and enqueues its batches. It is
// what the send:plan task runs, and it is safe to run again: rows that
// exist are left alone (INSERT … ON CONFLICT DO NOTHING), batch TaskIDs
// stop duplicate tasks, and a run resumes from the saved keyset cursor.
func (s *Service) Plan(ctx context.Context, id int64) (PlanResult, error) {
	var res PlanResult
	snd, err := s.getSend(ctx, id, true)
	if err != nil {
		return res, err
	}
	now := s.cfg.Now()
	switch snd.State {
	case Scheduled:
		// asynq schedules to the second (ProcessAt is stored as Unix
		// seconds), so a task may arrive up to a second early.
		if wait := snd.ScheduledAt.Sub(now); wait > 0 {
			if wait > 5*time.Second {
				return res, fmt.Errorf("queue: send %d is due at %s: too early", id, snd.ScheduledAt)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return res, ctx.Err()
			case <-t.C:
			}
			now = s.cfg.Now()
		}
		if !snd.NotAfter.IsZero() && now.After(snd.NotAfter) {
			reason := fmt.Sprintf("not sent: planning started at %s, after its not-after time %s",
				now.UTC().Format("2006-01-02 15:04:05Z"), snd.NotAfter.UTC().Format("2006-01-02 15:04:05Z"))
			s.log.WarnContext(ctx, "stale send cancelled", "send_id", id, "not_after", snd.NotAfter)
			return res, s.cancel(ctx, id, reason)
		}
		ok, err := s.ledger.StartPlanning(ctx, id, now, "", 0)
		if err != nil {
			return res, fmt.Errorf("queue: plan send %d: %w", id, err)
		}
		if !ok {
			return s.Plan(ctx, id) // state changed under us: look again
		}
	case Planning:
		// A previous run stopped part way: make sure the batches it
		// recorded are queued, then go on from its cursor.
		n, err := s.requeueBatches(ctx, snd)
		if err != nil {
			return res, err
		}
		res.Batches += n
	case Paused:
		if snd.pausedFrom == Scheduled || snd.pausedFrom == Planning {
			return res, errPaused
		}
		return res, nil
	default: // sending, done, cancelled: already planned
		return res, nil
	}

	pl, err := s.newPlanner(ctx, snd)
	if err != nil {
		return res, err
	}
	cursor, batchNo := snd.planCursor, snd.Batches
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		st, err := s.currentState(ctx, id)
		if err != nil {
			return res, err
		}
		if st == Paused {
			return res, errPaused
		}
		if st != Planning {
			return res, nil
		}
		// The first batch alone, so that it goes while the rest is planned.
		page := s.cfg.BatchSize * planChunkBatches
		if batchNo == 0 {
			page = s.cfg.BatchSize
		}
		var more bool
		if cursor, batchNo, more, err = s.planPage(ctx, pl, cursor, batchNo, page, &res); err != nil {
			return res, err
		}
		if !more {
			break
		}
	}
	now = s.cfg.Now()
	// Planned. A send paused meanwhile (a policy refusal in a batch that
	// went while the rest was planned) resumes to sending.
	if err := s.ledger.PlanDone(ctx, id, now); err != nil {
		return res, fmt.Errorf("queue: plan send %d: %w", id, err)
	}
	s.log.InfoContext(ctx, "send planned", "send_id", id, "planned", res.Planned, "skipped", res.Skipped,
		"batches", res.Batches, "already_had", res.AlreadyHad)
	return res, s.maybeFinish(ctx, id)
}

// planner is what planning a send needs besides the database: the send,
// its variant selection, and for a send with Again the readers who had
// the issue from an earlier send to the list.
type planner struct {
	snd *Send
	vs  *variants
	had []int64 // ascending
}

func (s *Service) newPlanner(ctx context.Context, snd *Send) (*planner, error) {
	pl := &planner{snd: snd, vs: newVariants(s.deps.Renderer, snd.Issue)}
	var err error
	if pl.vs, err = s.withListSettings(ctx, pl.vs, snd.List); err != nil {
		return nil, err
	}
	if snd.Again {
		var err error
		if pl.had, err = s.ledger.HadIt(ctx, snd.Issue.Slug, snd.List, snd.ID); err != nil {
			return nil, fmt.Errorf("queue: plan send %d: readers who had the issue: %w", snd.ID, err)
		}
	}
	return pl, nil
}

// planPage plans the next page of up to limit recipients after cursor:
// records their deliveries, cut into batches numbered from batchNo, and
// queues the batches. more is false when the list has no more readers.
func (s *Service) planPage(ctx context.Context, pl *planner, cursor, batchNo int64, limit int, res *PlanResult) (nextCursor, nextBatch int64, more bool, err error) {
	snd := pl.snd
	recips, err := s.deps.Directory.Recipients(ctx, snd.List, cursor, limit)
	if err != nil {
		if lerr := s.checkList(ctx, snd.List); errors.Is(lerr, ErrNoList) {
			err = lerr // gone since the send was created
		}
		return cursor, batchNo, false, fmt.Errorf("queue: plan send %d: recipients: %w", snd.ID, err)
	}
	if len(recips) == 0 {
		return cursor, batchNo, false, nil
	}
	var (
		rows []PlanRow
		had  int64
	)
	for _, r := range recips {
		if !r.Active {
			continue
		}
		if _, ok := slices.BinarySearch(pl.had, r.ID); ok {
			had++
			continue
		}
		k := pl.vs.key(effective(r.Prefs, snd.Filter))
		if k == "" {
			res.Skipped++
			continue
		}
		rows = append(rows, PlanRow{SubscriberID: r.ID, Variant: k})
	}
	last := recips[len(recips)-1].ID
	batches, err := s.insertDeliveries(ctx, snd.ID, rows, had, last, &batchNo)
	if err != nil {
		return cursor, batchNo, false, err
	}
	res.AlreadyHad += had
	for _, b := range batches {
		res.Planned += int64(len(b.IDs))
		b.UID = snd.UID
		if err := s.enqueueBatch(ctx, b); err != nil {
			return last, batchNo, false, err
		}
		res.Batches++
	}
	return last, batchNo, true, nil
}

// planFirst plans and queues the first batch of a send due now, from
// Create, so that its first copies do not wait for the planning task to
// be picked up and for a whole page to be planned. The planning task then
// goes on from where it stopped (state planning, the cursor saved).
func (s *Service) planFirst(ctx context.Context, snd *Send) error {
	now := s.cfg.Now()
	if !snd.NotAfter.IsZero() && now.After(snd.NotAfter) {
		return nil // the planning task cancels it, saying why
	}
	// The send enters planning under this call's planning lease, in the
	// same statement: a planning task re-created meanwhile (a reconciler
	// that finds the send planning before Create has queued its task)
	// waits for the lease instead of planning the same pages beside it.
	token := newToken()
	until := now.Add(s.cfg.LeaseTTL).UnixMilli()
	ok, err := s.ledger.StartPlanning(ctx, snd.ID, now, token, until)
	if err != nil {
		return fmt.Errorf("queue: plan send %d: %w", snd.ID, err)
	}
	if !ok {
		return nil
	}
	s.emit(ctx, EventSendStarted, snd.ID)
	run := s.leases.add(snd.ID, planBatch, token, until, func() {})
	defer s.leases.release(run)
	ctx = context.WithValue(ctx, planRunKey{}, run)
	snd.State = Planning
	pl, err := s.newPlanner(ctx, snd)
	if err != nil {
		return err
	}
	var res PlanResult
	// A few pages at most: with a filter few readers match, the planning
	// task finds the first batch.
	for i, cursor, batchNo, more := 0, int64(0), int64(0), true; more && batchNo == 0 && i < 4; i++ {
		if cursor, batchNo, more, err = s.planPage(ctx, pl, cursor, batchNo, s.cfg.BatchSize, &res); err != nil {
			return err
		}
	}
	return nil
}

// insertDeliveries records rows in one transaction (Ledger.InsertDeliveries),
// cut into batches numbered from *batchNo, and moves the cursor. Only rows
// that were new go into the returned batches. The send's kept counts go up
// by the rows inserted, and had_it by the readers the page left out
// (had), in the same transaction; a page that was planned before adds no
// had_it (its first planning did).
func (s *Service) insertDeliveries(ctx context.Context, sendID int64, rows []PlanRow, had, cursor int64, batchNo *int64) ([]BatchPayload, error) {
	var claim string
	if run := planRunOf(ctx); run != nil {
		claim = run.claim
	}
	ids, err := s.ledger.InsertDeliveries(ctx, PlanPage{SendID: sendID, Rows: rows, Had: had, Cursor: cursor,
		FirstBatch: *batchNo, BatchSize: s.cfg.BatchSize, Now: s.cfg.Now().UnixMilli(), PlanClaim: claim})
	if err != nil {
		return nil, fmt.Errorf("queue: plan send %d: %w", sendID, err)
	}
	out, next := s.cutBatches(sendID, ids, *batchNo)
	*batchNo = next
	return out, nil
}

// cutBatches cuts ids into batches numbered from first.
func (s *Service) cutBatches(sendID int64, ids []int64, first int64) ([]BatchPayload, int64) {
	var out []BatchPayload
	b := first
	for chunk := range slices.Chunk(ids, s.cfg.BatchSize) {
		out = append(out, BatchPayload{SendID: sendID, Batch: b, IDs: chunk})
		b++
	}
	return out, b
}

func (s *Service) batchOpts() []asynq.Option {
	return []asynq.Option{
		asynq.Queue(QueueNewsletter),
		asynq.Retention(s.cfg.Retention),
		// The per-delivery cap (MaxAttempts) ends retries first; pause
		// rechecks do not count.
		asynq.MaxRetry(s.cfg.MaxAttempts + 3),
		asynq.Timeout(s.cfg.TaskTimeout),
	}
}

func (s *Service) enqueueBatch(ctx context.Context, b BatchPayload) error {
	t, err := NewBatchTask(b, s.batchOpts()...)
	if err != nil {
		return err
	}
	if _, err := s.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("queue: enqueue batch %d of send %d: %w", b.Batch, b.SendID, err)
	}
	return nil
}

// requeueBatches enqueues (again) every batch that still has queued rows;
// TaskID conflicts mean the batch is queued already.
func (s *Service) requeueBatches(ctx context.Context, snd *Send) (int64, error) {
	byBatch, err := s.ledger.OpenRows(ctx, snd.ID)
	if err != nil {
		return 0, fmt.Errorf("queue: requeue batches of send %d: %w", snd.ID, err)
	}
	nums := make([]int64, 0, len(byBatch))
	for b := range byBatch {
		nums = append(nums, b)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for _, b := range nums {
		if err := s.enqueueBatch(ctx, BatchPayload{SendID: snd.ID, UID: snd.UID, Batch: b, IDs: byBatch[b]}); err != nil {
			return 0, err
		}
	}
	return int64(len(nums)), nil
}

func (s *Service) currentState(ctx context.Context, id int64) (State, error) {
	st, err := s.ledger.SendState(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("send %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("queue: state of send %d: %w", id, err)
	}
	return st, nil
}

// VariantCount is one variant's share of a list, from Preview.
type VariantCount struct {
	Key     string
	Readers int64
	Example audience.Prefs // the preferences of one reader who gets it
	// OnlyNothing marks the short copy of the readers whose chosen
	// sections all have nothing this month; Skipped, that the list's
	// setting leaves them out (ListSettings), so they get nothing.
	OnlyNothing, Skipped bool
}

// Preview is a dry run: it streams the list and counts how many readers
// would get which variant, sending and recording nothing.
func (s *Service) Preview(ctx context.Context, issue *compose.Issue, list string, filter *audience.Prefs) (variantsOut []VariantCount, nothing int64, err error) {
	if err := s.checkList(ctx, list); err != nil {
		return nil, 0, err
	}
	vs := newVariants(s.deps.Renderer, issue)
	// The readers the list's setting skips are counted apart from those
	// with nothing at all: vs keeps their key, and the count says skipped.
	skip, err := s.withListSettings(ctx, newVariants(s.deps.Renderer, issue), list)
	if err != nil {
		return nil, 0, err
	}
	byKey := map[string]*VariantCount{}
	var cursor int64
	for {
		recips, err := s.deps.Directory.Recipients(ctx, list, cursor, 2000)
		if err != nil {
			return nil, 0, fmt.Errorf("queue: preview: %w", err)
		}
		if len(recips) == 0 {
			break
		}
		for _, r := range recips {
			if !r.Active {
				continue
			}
			p := effective(r.Prefs, filter)
			k := vs.key(p)
			if k == "" {
				nothing++
				continue
			}
			vc := byKey[k]
			if vc == nil {
				vc = &VariantCount{Key: k, Example: p, OnlyNothing: isNothingKey(k), Skipped: isNothingKey(k) && skip.skipNothing}
				byKey[k] = vc
			}
			vc.Readers++
		}
		cursor = recips[len(recips)-1].ID
	}
	for _, vc := range byKey {
		variantsOut = append(variantsOut, *vc)
	}
	sort.Slice(variantsOut, func(i, j int) bool {
		if variantsOut[i].Readers != variantsOut[j].Readers {
			return variantsOut[i].Readers > variantsOut[j].Readers
		}
		return variantsOut[i].Key < variantsOut[j].Key
	})
	return variantsOut, nothing, nil
}

func (s *Service) handlePlan(ctx context.Context, t *asynq.Task) error {
	var p PlanPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.SendID <= 0 {
		return errPayload(TypeSendPlan, fmt.Errorf("%v", err))
	}
	if err := s.halted(); err != nil {
		return err
	}
	snd, err := s.getSend(ctx, p.SendID, false)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("plan: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if snd.UID != p.UID {
		return fmt.Errorf("plan: send %d has another uid (stale task): %w", p.SendID, asynq.SkipRetry)
	}
	err = s.planUnderLease(ctx, p.SendID)
	if err == nil || !isFailure(err) || ctx.Err() != nil {
		// A pause, a planning held or taken over by another run, a full
		// disk: none counts against the attempts (isFailure).
		return err
	}
	// A send that cannot be planned fails, saying why, when its list is
	// gone or its attempts are used up; until then each failed attempt
	// leaves its reason for `tayori send status` and the console.
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	if !ok {
		maxRetry = s.cfg.PlanAttempts - 1
	}
	wctx := context.WithoutCancel(ctx)
	if errors.Is(err, ErrNoList) || retried >= maxRetry {
		reason := fmt.Sprintf("planning failed after %s: %v", plural(retried+1, "attempt", "attempts"), err)
		if errors.Is(err, ErrNoList) {
			reason = fmt.Sprintf("planning failed: list %q does not exist (any more)", snd.List)
		}
		if ferr := s.fail(wctx, p.SendID, reason); ferr != nil {
			return errors.Join(err, ferr)
		}
		return fmt.Errorf("plan: %w: %w", err, asynq.SkipRetry)
	}
	note := fmt.Sprintf("planning attempt %d of %d failed, will try again: %v", retried+1, maxRetry+1, err)
	if nerr := s.ledger.NotePlanError(wctx, p.SendID, note, s.cfg.Now()); nerr != nil {
		s.log.WarnContext(ctx, "note a planning failure", "send_id", p.SendID, "err", nerr)
	}
	return err
}

// plural says "1 attempt" or "3 attempts".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
