package queue

import (
	"context"
	"database/sql"
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
	"github.com/tayori-news/tayori/internal/jsonw"
	"github.com/tayori-news/tayori/internal/sqlitedb"
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
	snd, err := getSend(ctx, s.db, id, true)
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
		r, err := s.db.ExecContext(ctx, `UPDATE sends SET state = 'planning', started_at = ?, updated_at = ?
			WHERE id = ? AND state = 'scheduled'`, now.UnixMilli(), now.UnixMilli(), id)
		if err != nil {
			return res, fmt.Errorf("queue: plan send %d: %w", id, err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
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
	if _, err := s.db.ExecContext(ctx, `UPDATE sends SET plan_done = 1, last_error = '', updated_at = ?,
		state = CASE state WHEN 'planning' THEN 'sending' ELSE state END,
		paused_from = CASE state WHEN 'paused' THEN 'sending' ELSE paused_from END
		WHERE id = ? AND (state = 'planning' OR state = 'paused' AND paused_from = 'planning')`, now.UnixMilli(), id); err != nil {
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
		if pl.had, err = sqlitedb.QueryColumn[int64](ctx, s.db, qHadIt, snd.Issue.Slug, snd.List, snd.ID); err != nil {
			return nil, fmt.Errorf("queue: plan send %d: readers who had the issue: %w", snd.ID, err)
		}
	}
	return pl, nil
}

// qHadIt lists the readers with a copy from an earlier send of an issue
// to a list (rows sent after a retry, and first copies in batch_sent),
// ascending. Earlier sends are over when a send with Again is created
// (Create refuses it while one runs), so the list does not change.
const qHadIt = `SELECT d.subscriber_id FROM sends s CROSS JOIN deliveries d ON d.send_id = s.id
	WHERE s.issue_slug = ?1 AND s.list_key = ?2 AND s.id < ?3 AND d.status = 'sent'
	UNION
	SELECT j.value ->> 0 FROM sends s CROSS JOIN batch_sent bs ON bs.send_id = s.id CROSS JOIN json_each(bs.sent) j
	WHERE s.issue_slug = ?1 AND s.list_key = ?2 AND s.id < ?3
	ORDER BY 1`

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
		rows []planRow
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
		rows = append(rows, planRow{id: r.ID, variant: k})
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
	r, err := s.db.ExecContext(ctx, `UPDATE sends SET state = 'planning', started_at = ?, updated_at = ?,
		plan_claim = ?, plan_lease_until = ? WHERE id = ? AND state = 'scheduled'`,
		now.UnixMilli(), now.UnixMilli(), token, until, snd.ID)
	if err != nil {
		return fmt.Errorf("queue: plan send %d: %w", snd.ID, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return nil
	}
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

type planRow struct {
	id      int64
	variant string
}

// insertDeliveries records rows in one transaction, cut into batches, and
// moves the cursor. Only rows that were new go into the returned batches.
//
// The common case (none of the rows planned before) is one set-based
// INSERT … SELECT FROM jsonb_each(?) for the whole page; if some rows
// existed already (planning resumed after a crash) the page is written
// again row by row, so that batches hold exactly the new rows.
//
// The send's kept counts (send_counts) go up by the rows inserted, and
// had_it by the readers the page left out (had), in the same transaction;
// a page that was planned before adds no had_it (its first planning did).
func (s *Service) insertDeliveries(ctx context.Context, sendID int64, rows []planRow, had, cursor int64, batchNo *int64) ([]BatchPayload, error) {
	wrap := func(err error) error { return fmt.Errorf("queue: plan send %d: %w", sendID, err) }
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap(err)
	}
	defer tx.Rollback()
	if err := checkPlanClaim(ctx, tx, sendID); err != nil {
		return nil, wrap(err)
	}
	now := s.cfg.Now().UnixMilli()
	out, next, ok, err := s.insertDeliveriesSet(ctx, tx, sendID, rows, *batchNo, now)
	if err != nil {
		return nil, wrap(err)
	}
	if !ok {
		tx.Rollback()
		if tx, err = s.db.BeginTx(ctx, nil); err != nil {
			return nil, wrap(err)
		}
		defer tx.Rollback()
		if err := checkPlanClaim(ctx, tx, sendID); err != nil {
			return nil, wrap(err)
		}
		if out, next, err = s.insertDeliveriesEach(ctx, tx, sendID, rows, *batchNo, now); err != nil {
			return nil, wrap(err)
		}
	}
	// Each batch has its claims row from the start: the send is done when
	// all of them are (a re-plan leaves existing rows as they are).
	for _, b := range out {
		if _, err := tx.ExecContext(ctx, `INSERT INTO batch_claims (send_id, batch, claim, claimed_at) VALUES (?, ?, '', 0)
			ON CONFLICT (send_id, batch) DO NOTHING`, sendID, b.Batch); err != nil {
			return nil, wrap(err)
		}
	}
	var n int64
	for _, b := range out {
		n += int64(len(b.IDs))
	}
	if !ok {
		had = 0
	}
	if _, err := tx.ExecContext(ctx, `UPDATE send_counts SET planned = planned + ?1, queued = queued + ?1, had_it = had_it + ?2
		WHERE send_id = ?3`, n, had, sendID); err != nil {
		return nil, wrap(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sends SET plan_cursor = ?, batches = ?, updated_at = ? WHERE id = ?`,
		cursor, next, now, sendID); err != nil {
		return nil, wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap(err)
	}
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

// insertDeliveriesSet inserts every row with one statement, assuming none
// exists; ok is false (and the transaction must be rolled back) if some did.
func (s *Service) insertDeliveriesSet(ctx context.Context, tx *sql.Tx, sendID int64, rows []planRow, first, now int64) ([]BatchPayload, int64, bool, error) {
	if len(rows) == 0 {
		return nil, first, true, nil
	}
	ids := make([]int64, len(rows))
	buf := make([]byte, 0, len(rows)*32)
	buf = append(buf, '[')
	for i, r := range rows {
		ids[i] = r.id
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, r.id, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, first+int64(i/s.cfg.BatchSize), 10)
		buf = append(buf, ',')
		buf = jsonw.AppendString(buf, r.variant)
		buf = append(buf, ']')
	}
	buf = append(buf, ']')
	res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at)
		SELECT ?1, value ->> 0, value ->> 1, value ->> 2, ?3 FROM jsonb_each(?2) WHERE true ON CONFLICT DO NOTHING`,
		sendID, string(buf), now)
	if err != nil {
		return nil, 0, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(rows)) {
		return nil, 0, false, err
	}
	out, next := s.cutBatches(sendID, ids, first)
	return out, next, true, nil
}

// insertDeliveriesEach inserts row by row and batches only the new rows.
func (s *Service) insertDeliveriesEach(ctx context.Context, tx *sql.Tx, sendID int64, rows []planRow, first, now int64) ([]BatchPayload, int64, error) {
	st, err := tx.PrepareContext(ctx, `INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, 0, err
	}
	defer st.Close()
	var ids []int64
	for _, r := range rows {
		res, err := st.ExecContext(ctx, sendID, r.id, first+int64(len(ids)/s.cfg.BatchSize), r.variant, now)
		if err != nil {
			return nil, 0, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // planned before
		}
		ids = append(ids, r.id)
	}
	out, next := s.cutBatches(sendID, ids, first)
	return out, next, nil
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
	rows, err := s.db.QueryContext(ctx, qOpenRows, snd.ID)
	if err != nil {
		return 0, fmt.Errorf("queue: requeue batches of send %d: %w", snd.ID, err)
	}
	byBatch := map[int64][]int64{}
	for rows.Next() {
		var b, id int64
		if err := rows.Scan(&b, &id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("queue: requeue batches of send %d: %w", snd.ID, err)
		}
		byBatch[b] = append(byBatch[b], id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
	var st string
	if err := s.db.QueryRowContext(ctx, `SELECT state FROM sends WHERE id = ?`, id).Scan(&st); err != nil {
		return "", fmt.Errorf("queue: state of send %d: %w", id, err)
	}
	return State(st), nil
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
	snd, err := getSend(ctx, s.db, p.SendID, false)
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
	if _, nerr := s.db.ExecContext(wctx, `UPDATE sends SET last_error = ?, updated_at = ? WHERE id = ? AND state IN ('scheduled','planning')`,
		note, s.cfg.Now().UnixMilli(), p.SendID); nerr != nil {
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
