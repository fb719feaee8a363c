package queue

import (
	"context"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// Migration 8 on a database with sends: each send keeps its columns and
// its deliveries (the rebuild of sends must not cascade), its kept counts
// start equal to a recount, a deleted send's id is not given out again,
// and the table takes the failed state. Down again, the old snapshot
// columns hold the counts and a failed send is cancelled; up again is the
// same as the first time.
func TestMigration8(t *testing.T) {
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
	upTo7 := fstest.MapFS{}
	names, _ := fs.Glob(sub, "000[1-7]_*.sql")
	for _, name := range names {
		b, _ := fs.ReadFile(sub, name)
		upTo7[name] = &fstest.MapFile{Data: b}
	}
	if err := sqlitedb.Migrate(ctx, db, upTo7, "queue_migrations"); err != nil {
		t.Fatal(err)
	}
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	// Send 1 done: 3 first copies sent, one after a retry, one failed.
	// Send 2 cancelled with a copy in flight (raced) and one cancelled.
	// Send 3 planning. Send 4 deleted.
	for id, st := range map[int]string{1: "done", 2: "cancelled", 3: "planning", 4: "done"} {
		mustExec(`INSERT INTO sends (id, uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at, last_error, cancel_mark)
			VALUES (?, ?, '2025-11', '{"slug":"2025-11"}', 'monthly', ?, ?, ?, ?, 'note', ?)`, id, "u"+st+string(rune('0'+id)), st, now, now, now, 0)
	}
	mustExec(`DELETE FROM sends WHERE id = 4`)
	for _, r := range []struct {
		send, sub int
		status    string
		perm      int
	}{{1, 1, "queued", 0}, {1, 2, "queued", 0}, {1, 3, "queued", 0}, {1, 4, "sent", 0}, {1, 5, "failed", 1},
		{2, 1, "queued", 0}, {2, 2, "cancelled", 0}, {2, 3, "cancelled", 0}, {3, 1, "queued", 0}, {3, 2, "retry", 0}} {
		mustExec(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, status, permanent, updated_at) VALUES (?, ?, 0, 'v', ?, ?, ?)`,
			r.send, r.sub, r.status, r.perm, now)
	}
	mustExec(`INSERT INTO batch_sent (send_id, batch, n, at, sent) VALUES (1, 0, 3, ?1, '[[1,"250 a"],[2,"250 b"],[3,"250 c"]]'),
		(2, 0, 1, ?1, '[[1,"250 a"]]'), (2, 0, 1, ?1, '[[2,"250 in flight"]]')`, now)
	mustExec(`UPDATE sends SET cancel_mark = 2 WHERE id = 2`)

	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	want := map[int64]Counts{
		1: {Planned: 5, Sent: 4, FailedPerm: 1},
		2: {Planned: 3, Sent: 2, Cancelled: 1},
		3: {Planned: 2, Queued: 1, Retrying: 1},
	}
	for id, w := range want {
		if c := checkKept(t, db, id); c != w {
			t.Errorf("send %d after migration 8: %+v, want %+v", id, c, w)
		}
		snd, err := getSend(ctx, db, id, true)
		if err != nil || snd.Issue.Slug != "2025-11" || snd.LastError != "note" || snd.List != "monthly" {
			t.Errorf("send %d after migration 8: %+v, %v", id, snd, err)
		}
	}
	var mark int
	if err := db.QueryRowContext(ctx, `SELECT cancel_mark FROM sends WHERE id = 2`).Scan(&mark); err != nil || mark != 2 {
		t.Errorf("cancel_mark %d (%v), want 2", mark, err)
	}
	var id int64
	if err := db.QueryRowContext(ctx, `INSERT INTO sends (uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at)
		VALUES ('u5', 'x', '{}', 'monthly', 'failed', 0, 0, 0) RETURNING id`).Scan(&id); err != nil || id != 5 {
		t.Errorf("a new send after migration 8: id %d (%v), want 5 (4 was taken, then deleted)", id, err)
	}
	if c := checkKept(t, db, id); c != (Counts{}) {
		t.Errorf("a new send's counts: %+v", c)
	}

	// Down to 7, and up again.
	store, err := database.NewStore(goose.DialectSQLite3, "queue_migrations")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := goose.NewProvider("", db, sub, goose.WithStore(store), goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goMigrations()...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pr.DownTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	var planned, sent, failed int
	var state string
	if err := db.QueryRowContext(ctx, `SELECT planned, sent, failed_perm, state FROM sends WHERE id = 1`).Scan(&planned, &sent, &failed, &state); err != nil ||
		planned != 5 || sent != 4 || failed != 1 || state != "done" {
		t.Errorf("send 1 at version 7: %d planned, %d sent, %d failed, %s (%v)", planned, sent, failed, state, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT state FROM sends WHERE id = 5`).Scan(&state); err != nil || state != "cancelled" {
		t.Errorf("the failed send at version 7: %s (%v), want cancelled", state, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM deliveries`).Scan(&n); err != nil || n != 10 {
		t.Errorf("%d deliveries after migrating down (%v), want 10", n, err)
	}
	if _, err := pr.Up(ctx); err != nil {
		t.Fatal(err)
	}
	for id, w := range want {
		if c := checkKept(t, db, id); c != w {
			t.Errorf("send %d after migrating up again: %+v, want %+v", id, c, w)
		}
	}
}
