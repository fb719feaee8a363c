package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// Two writers take the change log's sequence numbers in one order and
// commit in the other: A's change gets the earlier seq but A commits
// after B. A reader that polls in between must not advance its mark past
// A's change: once A commits, the next poll hands it out.
func TestChangeLogOutOfOrderCommitIsNotMissed(t *testing.T) {
	ctx := context.Background()
	db := testutil.OpenStore(t, testutil.EngineByName(t, "postgres"))
	ring, err := token.NewKeyring(time.Now, token.Key{ID: "k1", Secret: []byte("first-secret-0123456789abcdefgh")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenSubscribers(ctx, db, subscribers.Options{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	var a, b int64
	for _, p := range []struct {
		id    *int64
		email string
	}{{&a, "a@example.jp"}, {&b, "b@example.jp"}} {
		if err := db.SQL.QueryRowContext(ctx, `INSERT INTO subscribers (email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
VALUES ($1, $1, '', 'active', 0, 0, now(), now(), now()) RETURNING id`, p.email).Scan(p.id); err != nil {
			t.Fatal(err)
		}
	}
	// An earlier change, already read: the log does not start at A's.
	if _, err := db.SQL.ExecContext(ctx, `UPDATE subscribers SET name = '前' WHERE id = $1`, a); err != nil {
		t.Fatal(err)
	}
	mark, err := s.ChangeMark(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A changes a and keeps its transaction open; B changes b and commits.
	txA, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback()
	if _, err := txA.ExecContext(ctx, `UPDATE subscribers SET name = '甲' WHERE id = $1`, a); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL.ExecContext(ctx, `UPDATE subscribers SET name = '乙' WHERE id = $1`, b); err != nil {
		t.Fatal(err)
	}
	var seqA, seqB int64
	if err := txA.QueryRowContext(ctx, `SELECT max(seq) FILTER (WHERE subscriber_id = $1), max(seq) FILTER (WHERE subscriber_id = $2)
  FROM subscriber_changes`, a, b).Scan(&seqA, &seqB); err != nil {
		t.Fatal(err)
	}
	if seqA >= seqB {
		t.Fatalf("the setup wants A's seq before B's: A %d, B %d", seqA, seqB)
	}

	// The reader polls while A is open: whatever it gets, its new mark
	// must not hide A's change.
	var got []int64
	ids, next, complete, err := s.ChangedSince(ctx, mark)
	if err != nil || !complete {
		t.Fatalf("ChangedSince(%d) with A open: %v, complete %v", mark, err, complete)
	}
	if slices.Contains(ids, a) {
		t.Fatalf("A's uncommitted change was handed out: %v", ids)
	}
	got = append(got, ids...)
	mark = next

	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	// Another transaction anywhere on the server may hold the snapshot
	// horizon back for a moment: the change comes once it has ended.
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(got, a) || !slices.Contains(got, b) {
		if time.Now().After(deadline) {
			t.Fatalf("after A committed the reader got %v from mark %d; want a (%d) and b (%d)", got, mark, a, b)
		}
		ids, next, complete, err := s.ChangedSince(ctx, mark)
		if err != nil || !complete {
			t.Fatalf("ChangedSince(%d): %v, complete %v", mark, err, complete)
		}
		got, mark = append(got, ids...), next
		if len(ids) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The mark is then stable: nothing more to read.
	if m, err := s.ChangeMark(ctx); err != nil || m != mark {
		t.Errorf("ChangeMark after reading everything: %d, %v; want the reader's mark %d", m, err, mark)
	}
}

// A reader whose mark is below entries deleted from the log is told its
// list is incomplete; a reader past them is not.
func TestChangeLogTrimHorizon(t *testing.T) {
	ctx := context.Background()
	db := testutil.OpenStore(t, testutil.EngineByName(t, "postgres"))
	ring, err := token.NewKeyring(time.Now, token.Key{ID: "k1", Secret: []byte("first-secret-0123456789abcdefgh")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenSubscribers(ctx, db, subscribers.Options{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	var a int64
	if err := db.SQL.QueryRowContext(ctx, `INSERT INTO subscribers (email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
VALUES ('a@example.jp', 'a@example.jp', '', 'active', 0, 0, now(), now(), now()) RETURNING id`).Scan(&a); err != nil {
		t.Fatal(err)
	}
	m0, err := s.ChangeMark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"一", "二"} {
		if _, err := db.SQL.ExecContext(ctx, `UPDATE subscribers SET name = $1 WHERE id = $2`, name, a); err != nil {
			t.Fatal(err)
		}
	}
	var m1 int64 // after the first change
	if err := db.SQL.QueryRowContext(ctx, `SELECT min(xid) FROM subscriber_changes`).Scan(&m1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL.ExecContext(ctx, `DELETE FROM subscriber_changes WHERE xid <= $1`, m1); err != nil {
		t.Fatal(err)
	}
	if _, _, complete, err := s.ChangedSince(ctx, m0); err != nil || complete {
		t.Errorf("ChangedSince below the trimmed entry: complete %v, %v; want incomplete", complete, err)
	}
	// Another transaction anywhere on the server may hold the snapshot
	// horizon back for a moment.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ids, _, complete, err := s.ChangedSince(ctx, m1)
		if err != nil || !complete {
			t.Fatalf("ChangedSince past the trimmed entry: complete %v, %v; want complete", complete, err)
		}
		if slices.Equal(ids, []int64{a}) {
			break
		}
		if len(ids) > 0 || time.Now().After(deadline) {
			t.Fatalf("ChangedSince past the trimmed entry: %v; want [%d]", ids, a)
		}
	}
}
