package queue

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// migratedDB is a fresh SQLite file with the queue's tables.
func migratedDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sqlitedb.Open(context.Background(), t.TempDir()+"/queue.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// recordFixture is a send (id 1) with deliveries for readers 10–14 in
// batch 0 and 15 in batch 1, a Service on it, and flush, which commits
// outcomes as one group.
func recordFixture(t *testing.T) (ctx context.Context, db *sql.DB, now int64, mustExec func(string, ...any), s *Service, flush func(...outcome)) {
	ctx = context.Background()
	db = migratedDB(t)
	now = time.Now().UnixMilli()
	mustExec = func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(`INSERT INTO sends (id, uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at)
		VALUES (1, 'u1', 'x', '{}', 'monthly', 'sending', ?, ?, ?)`, now, now, now)
	for id := 10; id < 15; id++ {
		mustExec(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at) VALUES (1, ?, 0, 'v', ?)`, id, now)
	}
	mustExec(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at) VALUES (1, 15, 1, 'v', ?)`, now)
	// Rows inserted here, not by planning, are counted by a recount.
	mustExec(qRecountRows, 1)
	s = &Service{db: db, cfg: Config{Now: time.Now}}
	rec := newRecorder(db, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { rec.close() })
	flush = func(os ...outcome) {
		t.Helper()
		if err := rec.flushOnce(os); err != nil {
			t.Fatal(err)
		}
	}
	return
}

// The claim/record protocol on a real SQLite file: a run records outcomes
// only under its batch's current claim and only for unfinished rows; a
// reply survives the JSON round trip byte for byte (invalid UTF-8 becomes
// U+FFFD); attempts count recorded tries.
func TestClaimAndRecord(t *testing.T) {
	ctx, db, _, mustExec, s, flush := recordFixture(t)
	row := func(id int64) (status, reply string, attempts int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT status, reply, attempts FROM delivery_state WHERE send_id = 1 AND subscriber_id = ?`, id).
			Scan(&status, &reply, &attempts); err != nil {
			t.Fatal(err)
		}
		return
	}

	p := &BatchPayload{SendID: 1, Batch: 0, IDs: []int64{10, 11, 12, 13, 14}}
	s.cfg.LeaseTTL = time.Minute
	a, until, err := s.claim(ctx, p, "run-a")
	if err != nil || len(a) != 5 || until < time.Now().Add(50*time.Second).UnixMilli() {
		t.Fatalf("claim by run a: %v, lease until %d, %v", a, until, err)
	}
	// While run a's lease lives, no other run claims the batch.
	if b, _, err := s.claim(ctx, p, "run-b"); !errors.Is(err, errBusy) || b != nil {
		t.Fatalf("claim by run b under run a's live lease: %v, %v; want errBusy", b, err)
	}
	flush(outcome{sendID: 1, subID: 10, claim: "run-a", status: "sent", reply: "250 2.0.0 \"ok\" \\ 受付 \xff\n"},
		outcome{sendID: 1, subID: 11, claim: "run-a", status: "retry", reply: "451 later"})
	if st, reply, n := row(10); st != "sent" || reply != "250 2.0.0 \"ok\" \\ 受付 \uFFFD\n" || n != 1 {
		t.Errorf("row 10 = %s %q %d", st, reply, n)
	}

	// Run a's lease lapses (its process died) and run b takes the batch
	// over: it gets the unfinished rows, and run a's later outcomes no
	// longer count.
	mustExec(`UPDATE batch_claims SET lease_until = ? WHERE send_id = 1 AND batch = 0`, time.Now().Add(-time.Second).UnixMilli())
	b, _, err := s.claim(ctx, p, "run-b")
	if err != nil || len(b) != 4 || b[0].subID != 11 || b[0].attempts != 1 {
		t.Fatalf("claim by run b: %+v, %v", b, err)
	}
	flush(outcome{sendID: 1, subID: 12, claim: "run-a", status: "sent", reply: "250 stale"},
		outcome{sendID: 1, subID: 11, claim: "run-b", status: "sent", reply: "250 b"},
		outcome{sendID: 1, subID: 10, claim: "run-b", status: "failed", permanent: true, reply: "550 again"})
	if st, _, _ := row(12); st != "queued" {
		t.Errorf("row 12 after a stale run's outcome = %s, want queued", st)
	}
	if st, reply, n := row(11); st != "sent" || reply != "250 b" || n != 2 {
		t.Errorf("row 11 = %s %q %d, want sent by run b after 2 attempts", st, reply, n)
	}
	if st, _, n := row(10); st != "sent" || n != 1 {
		t.Errorf("row 10 = %s after %d, want a finished row left alone", st, n)
	}
	// A copy in flight when the editor cancelled is recorded as what it was.
	mustExec(`UPDATE deliveries SET status = 'cancelled' WHERE send_id = 1 AND subscriber_id IN (13, 14)`)
	flush(outcome{sendID: 1, subID: 13, claim: "run-b", status: "sent", reply: "250 in flight"})
	if st, _, _ := row(13); st != "sent" {
		t.Errorf("row 13, sent while the send was cancelled = %s", st)
	}
	if st, _, _ := row(14); st != "cancelled" {
		t.Errorf("row 14 = %s, want cancelled", st)
	}
	// Another batch's rows are neither claimed nor recorded by this one.
	if st, _, _ := row(15); st != "queued" {
		t.Errorf("row 15 of batch 1 = %s", st)
	}
	flush(outcome{sendID: 1, subID: 15, claim: "run-b", status: "sent"})
	if st, _, _ := row(15); st != "queued" {
		t.Errorf("row 15 recorded without its batch's claim: %s", st)
	}
	checkKept(t, db, 1)
}

// Every query by delivery status uses a partial index or the primary key,
// never a scan of the whole table; the ones that run for every batch use
// a key range within one send.
func TestStatusQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	db := migratedDB(t)
	for _, c := range []struct {
		name, q string
		args    []any
		want    string
		noSort  bool // the plan must not sort (a temporary B-tree)
	}{
		{"cancel", qCancelOpen, []any{1, 1}, "SEARCH deliveries USING PRIMARY KEY (send_id=?)", false},
		{"requeue", qOpenRows, []any{1}, "SEARCH deliveries USING PRIMARY KEY (send_id=?)", false},
		{"all batches done", "SELECT " + qAllBatchesDone + " FROM sends WHERE id = 1", nil, "INDEX batch_claims_open", false},
		{"batch done", qBatchDone, []any{1, 0, "c", 1, 2}, "SEARCH deliveries USING PRIMARY KEY (send_id=? AND subscriber_id>? AND subscriber_id<?)", false},
		{"failures", qFailures, []any{1, 10}, "INDEX deliveries_trouble", false},
		{"record", qRecord, []any{"[]", 1}, "SEARCH deliveries USING PRIMARY KEY (send_id=? AND subscriber_id=?)", false},
		{"claim", qClaimRows, []any{1, 1, 2, 0}, "SEARCH deliveries USING PRIMARY KEY (send_id=? AND subscriber_id>? AND subscriber_id<?)", false},
		{"history", qHistory, []any{1}, "SEARCH d USING PRIMARY KEY (send_id=? AND subscriber_id=?)", true},
		{"last attempts", qLastAttempts, []any{1, 5}, "SEARCH d USING PRIMARY KEY (send_id=? AND subscriber_id=?)", true},
		// batch_sent (migration 0007): found by send or batch, and a copy's
		// row by its key.
		{"record sent", qRecordSent, []any{"[]", 1}, "SEARCH b EXISTS USING PRIMARY KEY (send_id=? AND batch=?)", false},
		{"sent of a batch", qBatchSentIDs, []any{1, 0}, "SEARCH bs USING INDEX batch_sent_batch (send_id=? AND batch=?)", false},
		{"sent count", qSentCount, []any{1}, "SEARCH batch_sent USING COVERING INDEX batch_sent_batch (send_id=?)", false},
		{"raced cancel", qRacedCancel, []any{1}, "SEARCH d USING PRIMARY KEY (send_id=? AND subscriber_id=?)", false},
		{"batch done, sent copies", qBatchDone, []any{1, 0, "c", 1, 2}, "SEARCH bs USING INDEX batch_sent_batch (send_id=? AND batch=?)", false},
		{"cancel, sent copies", qCancelOpen, []any{1, 1}, "SEARCH bs USING INDEX batch_sent_batch (send_id=?)", false},
		{"history, sent copy", qHistory, []any{1}, "SEARCH bs USING INDEX batch_sent_batch (send_id=? AND batch=?)", true},
		// Migration 8: a send's earlier sends, and its kept counts.
		{"earlier sends", qEarlier, []any{"2025-11", "monthly"}, "SEARCH s USING INDEX sends_issue_list (issue_slug=? AND list_key=?)", false},
		{"send", `SELECT ` + sendCols + `, s.issue_json` + sendFrom + ` WHERE s.id = 1`, nil, "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)", false},
	} {
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.q, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "\n")
		if !strings.Contains(all, c.want) || strings.Contains(all, "SCAN deliveries") || slices.Contains(plan, "SCAN d") ||
			slices.Contains(plan, "SCAN bs") || strings.Contains(all, "MATERIALIZE") ||
			c.noSort && strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("%s: plan\n%s\nwant %q", c.name, all, c.want)
		}
	}
}

// A send under way when migration 0005 runs keeps its progress: batches
// with no open delivery count as done, the others do not; afterwards a
// batch is done only under its current claim, and the send is done once
// every batch is.
func TestBatchDone(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, t.TempDir()+"/queue.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	upTo4 := fstest.MapFS{}
	for _, name := range []string{"0001_sends.sql", "0002_deliveries_by_subscriber.sql", "0003_batch_claims.sql", "0004_partial_status_indexes.sql"} {
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			t.Fatal(err)
		}
		upTo4[name] = &fstest.MapFile{Data: b}
	}
	if err := sqlitedb.Migrate(ctx, db, upTo4, "queue_migrations"); err != nil {
		t.Fatal(err)
	}
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	mustExec(`INSERT INTO sends (id, uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at, plan_done, batches)
		VALUES (1, 'u1', 'x', '{}', 'monthly', 'sending', ?1, ?1, ?1, 1, 3)`, now)
	for id, st := range map[int]string{1: "sent", 2: "sent", 3: "sent", 4: "queued", 5: "skipped", 6: "failed"} {
		mustExec(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, status, updated_at) VALUES (1, ?, ?, 'v', ?, ?)`,
			id, (id-1)/2, st, now)
	}
	mustExec(`INSERT INTO batch_claims (send_id, batch, claim, claimed_at) VALUES (1, 1, 'old', ?)`, now)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	state := func() (string, int) {
		t.Helper()
		var st string
		var done int
		if err := db.QueryRowContext(ctx, `SELECT state, (SELECT count(*) FROM batch_claims WHERE send_id = 1 AND done = 1)
			FROM sends WHERE id = 1`).Scan(&st, &done); err != nil {
			t.Fatal(err)
		}
		return st, done
	}
	if _, done := state(); done != 2 {
		t.Fatalf("after the upgrade %d batches done, want 2 (batches 0 and 2)", done)
	}
	s := &Service{db: db, cfg: Config{Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.maybeFinish(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if st, _ := state(); st != "sending" {
		t.Fatalf("send is %s with a batch open, want sending", st)
	}
	b1 := &BatchPayload{SendID: 1, Batch: 1, IDs: []int64{3, 4}}
	if err := s.finishBatch(ctx, b1, "old", false); err != nil {
		t.Fatal(err)
	}
	if _, done := state(); done != 2 {
		t.Fatal("a batch with a queued delivery counted as done")
	}
	mustExec(`UPDATE batch_claims SET claim = 'new' WHERE send_id = 1 AND batch = 1`)
	mustExec(`UPDATE deliveries SET status = 'sent' WHERE send_id = 1 AND subscriber_id = 4`)
	if err := s.finishBatch(ctx, b1, "old", false); err != nil {
		t.Fatal(err)
	}
	if _, done := state(); done != 2 {
		t.Fatal("a stale run marked the batch done")
	}
	if err := s.finishBatch(ctx, b1, "new", false); err != nil {
		t.Fatal(err)
	}
	if _, done := state(); done != 3 {
		t.Fatalf("after the current run %d batches done, want 3", done)
	}
	if err := s.maybeFinish(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if st, _ := state(); st != "done" {
		t.Fatalf("send is %s, want done", st)
	}
}

// First copies that were sent go to batch_sent (migration 0007), not to
// their rows: delivery_state, the claim, the counts, the batch's end, a
// cancel racing copies in flight and the history all read them, a stale
// run cannot add any, and migrating down writes them into the rows.
func TestFirstCopiesInBatchSent(t *testing.T) {
	ctx, db, now, mustExec, s, flush := recordFixture(t)
	mustExec(`INSERT INTO batch_claims (send_id, batch, claim, claimed_at) VALUES (1, 0, '', 0), (1, 1, '', 0)`)
	sent := func(id int64, claim, reply string) outcome {
		return outcome{sendID: 1, subID: id, batch: 0, claim: claim, status: "sent", reply: reply, first: true}
	}
	type state struct {
		raw, status, reply string
		attempts           int
	}
	get := func(id int64) (st state) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT d.status, s.status, s.reply, s.attempts FROM deliveries d
			JOIN delivery_state s USING (send_id, subscriber_id) WHERE send_id = 1 AND subscriber_id = ?`, id).
			Scan(&st.raw, &st.status, &st.reply, &st.attempts); err != nil {
			t.Fatal(err)
		}
		return st
	}
	counts := func(want Counts) {
		t.Helper()
		if c := checkKept(t, db, 1); c != want {
			t.Errorf("counts %+v, want %+v", c, want)
		}
	}
	batchDone := func() (done bool) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT done FROM batch_claims WHERE send_id = 1 AND batch = 0`).Scan(&done); err != nil {
			t.Fatal(err)
		}
		return done
	}
	p := &BatchPayload{SendID: 1, Batch: 0, IDs: []int64{10, 11, 12, 13, 14}}

	if a, _, err := s.claim(ctx, p, "run-a"); err != nil || len(a) != 5 {
		t.Fatalf("claim by run a: %v, %v", a, err)
	}
	// Two first copies sent and one retry in one group: one transaction,
	// one batch_sent row, the retry in its row.
	flush(sent(10, "run-a", "250 2.0.0 Ok: queued as 受付A \xff"),
		outcome{sendID: 1, subID: 11, batch: 0, claim: "run-a", status: "retry", reply: "451 later", first: true},
		sent(12, "run-a", "250 ok 12"))
	if st := get(10); st != (state{"queued", "sent", "250 2.0.0 Ok: queued as 受付A \uFFFD", 1}) {
		t.Errorf("reader 10: %+v", st)
	}
	if st := get(11); st != (state{"retry", "retry", "451 later", 1}) {
		t.Errorf("reader 11: %+v", st)
	}
	var rows, n int
	if err := db.QueryRowContext(ctx, `SELECT count(*), sum(n) FROM batch_sent`).Scan(&rows, &n); err != nil || rows != 1 || n != 2 {
		t.Errorf("batch_sent: %d rows holding %d copies (%v), want 1 holding 2", rows, n, err)
	}
	counts(Counts{Planned: 6, Sent: 2, Retrying: 1, Queued: 3})

	// Run b takes over (run a's lease, of LeaseTTL 0, has lapsed): the
	// copies in batch_sent are done, and run a can add no more.
	b, _, err := s.claim(ctx, p, "run-b")
	if err != nil || len(b) != 3 || b[0].subID != 11 || b[0].attempts != 1 || b[1].subID != 13 || b[2].subID != 14 {
		t.Fatalf("claim by run b: %+v, %v", b, err)
	}
	flush(sent(13, "run-a", "250 stale"))
	if st := get(13); st.status != "queued" {
		t.Errorf("reader 13 after a stale run's copy: %+v", st)
	}
	flush(sent(13, "run-b", "250 ok 13"),
		outcome{sendID: 1, subID: 11, batch: 0, claim: "run-b", status: "sent", reply: "250 ok 11"})
	if st := get(11); st != (state{"sent", "sent", "250 ok 11", 2}) {
		t.Errorf("reader 11, sent on its second attempt: %+v", st)
	}
	if err := s.finishBatch(ctx, p, "run-b", false); err != nil || batchDone() {
		t.Errorf("batch done with reader 14 open (%v)", err)
	}
	counts(Counts{Planned: 6, Sent: 4, Queued: 2})

	// A cancel leaves the sent copies' rows alone; a copy in flight then
	// is sent, and counted once.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cancelOpen(ctx, tx, 1, now); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]string{10: "queued", 12: "queued", 13: "queued", 14: "cancelled", 15: "cancelled"} {
		if st := get(id); st.raw != want {
			t.Errorf("reader %d's row after the cancel: %s, want %s", id, st.raw, want)
		}
	}
	counts(Counts{Planned: 6, Sent: 4, Cancelled: 2})
	flush(sent(14, "run-b", "250 ok 14"))
	if st := get(14); st != (state{"cancelled", "sent", "250 ok 14", 1}) {
		t.Errorf("reader 14, in flight during the cancel: %+v", st)
	}
	counts(Counts{Planned: 6, Sent: 5, Cancelled: 1})
	// A run that gave every claimed row a final outcome marks the batch
	// done without reading its rows, but only under the current claim.
	if err := s.finishBatch(ctx, p, "run-a", true); err != nil || batchDone() {
		t.Errorf("batch done by a stale run (%v)", err)
	}
	if err := s.finishBatch(ctx, p, "run-b", false); err != nil || !batchDone() {
		t.Errorf("batch not done with every copy sent (%v)", err)
	}
	if h, err := deliveryHistory(ctx, db, 12); err != nil || len(h) != 1 || h[0].Status != "sent" || h[0].Attempts != 1 {
		t.Errorf("history of reader 12: %+v, %v", h, err)
	}
	o := &Outcomes{db: db}
	if a, err := o.LastAttempts(ctx, 13, 5); err != nil || len(a) != 1 || !a[0].Sent || a[0].Reply != "250 ok 13" {
		t.Errorf("last attempts of reader 13: %+v, %v", a, err)
	}
	if n, err := o.SentBetween(ctx, time.UnixMilli(now-1000), time.Now().Add(time.Minute)); err != nil || n != 5 {
		t.Errorf("sent between: %d, %v, want 5", n, err)
	}

	// Down to 0006: the copies are written into their rows.
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	store, err := database.NewStore(goose.DialectSQLite3, "queue_migrations")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := goose.NewProvider("", db, sub, goose.WithStore(store), goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goMigrations()...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pr.DownTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]string{10: "250 2.0.0 Ok: queued as 受付A \uFFFD", 12: "250 ok 12", 13: "250 ok 13", 14: "250 ok 14"} {
		var status, reply string
		var attempts int
		if err := db.QueryRowContext(ctx, `SELECT status, reply, attempts FROM deliveries WHERE send_id = 1 AND subscriber_id = ?`, id).
			Scan(&status, &reply, &attempts); err != nil || status != "sent" || reply != want || attempts != 1 {
			t.Errorf("reader %d after migrating down: %s %q %d (%v)", id, status, reply, attempts, err)
		}
	}
}

// A group commit that fails is not dropped: the recorder stalls (ready
// blocks, so batch runs send nothing more), keeps the outcomes and writes
// them once it can. Only a recorder closing while stalled gives them up,
// after its grace period: counted, and waiting on them returns the error.
func TestRecorderKeepsOutcomesItCannotCommit(t *testing.T) {
	ctx, db, _, mustExec, _, _ := recordFixture(t)
	mustExec(`INSERT INTO batch_claims (send_id, batch, claim, claimed_at) VALUES (1, 0, 'c', 0)`)
	// Commits of copies fail, as on a full disk, until the trigger goes.
	mustExec(`CREATE TRIGGER full_disk BEFORE INSERT ON batch_sent BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`)
	rec := newRecorder(db, time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer rec.close()
	if err := rec.ready(ctx); err != nil {
		t.Fatalf("ready before any commit: %v", err)
	}
	sent := func(id int64) outcome {
		return outcome{sendID: 1, subID: id, batch: 0, claim: "c", status: "sent", reply: "250 ok", first: true}
	}
	tk := rec.add(sent(10))
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}
	if err := rec.wait(short(), tk); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait on an outcome that cannot be committed: %v, want it to go on waiting", err)
	}
	if err := rec.ready(short()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ready while outcomes wait: %v, want it to block", err)
	}
	tk = rec.add(sent(11)) // answered meanwhile (a copy in flight)
	mustExec(`DROP TRIGGER full_disk`)
	if err := rec.wait(ctx, tk); err != nil {
		t.Errorf("wait once there is room: %v", err)
	}
	if err := rec.ready(short()); err != nil {
		t.Errorf("ready after the commit: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sent_copies WHERE send_id = 1`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d copies recorded (%v), want 2", n, err)
	}
	if n := rec.failures(); n != 0 {
		t.Errorf("%d groups given up, want none", n)
	}

	// Closing while stalled: the outcomes are given up after the grace.
	mustExec(`CREATE TRIGGER full_disk BEFORE INSERT ON batch_sent BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`)
	rec.grace = 50 * time.Millisecond
	tk = rec.add(sent(12))
	for !rec.stalled.Load() {
		time.Sleep(time.Millisecond)
	}
	if err := rec.close(); err == nil || !strings.Contains(err.Error(), "full") {
		t.Errorf("close: %v, want the commit's error", err)
	}
	if err := rec.wait(ctx, tk); err == nil {
		t.Error("wait on an outcome given up: no error")
	}
	if n := rec.failures(); n != 1 {
		t.Errorf("%d groups given up, want 1", n)
	}
}

// checkKept compares a send's kept counts with a full recount.
func checkKept(t *testing.T, db *sql.DB, id int64) Counts {
	t.Helper()
	ctx := context.Background()
	snd, err := getSend(ctx, db, id, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := liveCounts(ctx, db, id)
	if err != nil {
		t.Fatal(err)
	}
	if snd.Counts != c {
		t.Errorf("send %d: kept counts %+v, recount %+v", id, snd.Counts, c)
	}
	return c
}
