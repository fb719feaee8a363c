package postgres_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tayori-news/tayori/internal/testutil"
)

// The statement triggers that stand in for foreign keys on memberships,
// consents and status_history refuse a row whose subscriber or list does
// not exist, and deleting a subscriber or a list removes its rows.
func TestSubscriberReferencesKept(t *testing.T) {
	ctx := context.Background()
	db := testutil.OpenStore(t, testutil.EngineByName(t, "postgres")).SQL
	var a, b, list int64
	for _, p := range []struct {
		id    *int64
		email string
	}{{&a, "a@example.jp"}, {&b, "b@example.jp"}} {
		if err := db.QueryRowContext(ctx, `INSERT INTO subscribers (email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
VALUES ($1, $1, '', 'active', 0, 0, now(), now(), now()) RETURNING id`, p.email).Scan(p.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.QueryRowContext(ctx, `INSERT INTO lists (key, name, created_at) VALUES ('alerts', '速報', now()) RETURNING id`).Scan(&list); err != nil {
		t.Fatal(err)
	}
	children := func(id int64) string {
		return `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at) VALUES (` + itoa(list) + `, ` + itoa(id) + `, 1, now(), now());
INSERT INTO consents (subscriber_id, consented_at, method, recorded_at) VALUES (` + itoa(id) + `, now(), 'import', now());
INSERT INTO status_history (subscriber_id, at, to_status) VALUES (` + itoa(id) + `, now(), 'active')`
	}
	for _, id := range []int64{a, b} {
		if _, err := db.ExecContext(ctx, children(id)); err != nil {
			t.Fatalf("rows of subscriber %d: %v", id, err)
		}
	}
	for name, q := range map[string]string{
		"membership of no subscriber": `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at) VALUES (` + itoa(list) + `, 999999, 1, now(), now())`,
		"membership of no list":       `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at) VALUES (999999, ` + itoa(a) + `, 1, now(), now())`,
		"consent of no subscriber":    `INSERT INTO consents (subscriber_id, consented_at, method, recorded_at) VALUES (999999, now(), 'import', now())`,
		"history of no subscriber":    `INSERT INTO status_history (subscriber_id, at, to_status) SELECT x, now(), 'active' FROM unnest(ARRAY[` + itoa(a) + `, 999999]::bigint[]) x`,
	} {
		_, err := db.ExecContext(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23503" {
			t.Errorf("%s: %v, want a foreign key violation (23503)", name, err)
		}
	}
	count := func(id int64) (n int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM memberships WHERE subscriber_id = $1)
  + (SELECT count(*) FROM consents WHERE subscriber_id = $1) + (SELECT count(*) FROM status_history WHERE subscriber_id = $1)`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM subscribers WHERE id = $1`, a); err != nil {
		t.Fatal(err)
	}
	if n, nb := count(a), count(b); n != 0 || nb != 3 {
		t.Errorf("after deleting subscriber a: %d rows of a left (want 0), %d of b (want 3)", n, nb)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM lists WHERE id = $1`, list); err != nil {
		t.Fatal(err)
	}
	var nm int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM memberships WHERE list_id = $1`, list).Scan(&nm); err != nil || nm != 0 {
		t.Errorf("memberships of a deleted list: %d, %v; want 0", nm, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
