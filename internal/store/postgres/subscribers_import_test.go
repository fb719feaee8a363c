package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/store/postgres"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// The merge tried first is the one with ON CONFLICT, minus that clause
// and the look for the rows it left out.
func TestImportPlainMergeDropsOnlyOnConflict(t *testing.T) {
	if strings.Contains(postgres.SubMergePlain, "ON CONFLICT") {
		t.Errorf("the plain merge still has ON CONFLICT:\n%s", postgres.SubMergePlain)
	}
	head, _, _ := strings.Cut(postgres.SubMerge, "\nSELECT st.ord")
	want := strings.Replace(head, "\n    ON CONFLICT (email_key) DO NOTHING", "", 1) + "\nSELECT 0::integer WHERE false"
	if postgres.SubMergePlain != want || head == postgres.SubMerge {
		t.Errorf("the plain merge differs from the merge by more than ON CONFLICT and the look for rows left out:\n%s", postgres.SubMergePlain)
	}
}

// An import skips the merge's foreign-key checks only where the role may
// set session_replication_role and nothing else would be skipped with
// them: once someone puts a trigger of their own on a table the merge
// writes, imports take the checked path, and the trigger sees every row.
func TestImportSkipsForeignKeyChecksOnlyWhenNothingElseIsSkipped(t *testing.T) {
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
	// What the role may do decides what to expect.
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, serr := conn.ExecContext(ctx, `SET session_replication_role = replica`)
	mayReplica := serr == nil
	conn.ExecContext(ctx, `RESET session_replication_role`)
	conn.Close()
	if !mayReplica {
		t.Logf("the test role may not set session_replication_role (%v): only the checked path is tested", serr)
	}

	unchecked := func() bool {
		t.Helper()
		sess, err := store.Subscribers(db).BeginImport(ctx, subscribers.ImportConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close(ctx, false)
		return postgres.ImportUnchecked(sess)
	}
	if got := unchecked(); got != mayReplica {
		t.Errorf("with the schema's own triggers: unchecked merge %v, want %v", got, mayReplica)
	}
	csv := "email,name,consent_at,consent_method,topics\n" +
		"a@example.jp,甲,2025-12-01,import,\n" +
		"b@example.jp,乙,2025-12-01,import,\"policy,gpu\"\n"
	if res, err := s.Import(ctx, strings.NewReader(csv), subscribers.ImportOptions{}); err != nil || res.Added != 2 {
		t.Fatalf("first import: %+v, %v", res, err)
	}

	for _, q := range []string{
		`CREATE TABLE consent_seen (subscriber_id bigint NOT NULL)`,
		`CREATE FUNCTION consent_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO consent_seen VALUES (NEW.subscriber_id); RETURN NEW; END; $$`,
		`CREATE TRIGGER consent_seen AFTER INSERT ON consents FOR EACH ROW EXECUTE FUNCTION consent_seen()`,
	} {
		if _, err := db.SQL.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if unchecked() {
		t.Fatal("an INSERT trigger on consents would be skipped: the merge must run its checks")
	}
	csv = "email,name,consent_at,consent_method,topics\n" +
		"c@example.jp,丙,2025-12-01,import,\n" +
		"b@example.jp,乙,2025-12-01,import,\"policy,gpu\"\n" + // known: updated or unchanged, no new consent
		"d@example.jp,丁,2025-12-01,import,\"policy,ai\"\n"
	res, err := s.Import(ctx, strings.NewReader(csv), subscribers.ImportOptions{})
	if err != nil || res.Added != 2 {
		t.Fatalf("second import: %+v, %v", res, err)
	}
	var seen, want int
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM consent_seen`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM consents c JOIN subscribers s ON s.id = c.subscriber_id
 WHERE s.email IN ('c@example.jp', 'd@example.jp')`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if seen != 2 || want != 2 {
		t.Errorf("the trigger saw %d consents, the table has %d for the new rows: want 2 and 2", seen, want)
	}
	// Both paths wrote the same things: one history entry, membership
	// and consent per reader, and the tags.
	var hist, memb, cons, tags int
	if err := db.SQL.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM status_history), (SELECT count(*) FROM memberships),
 (SELECT count(*) FROM consents), (SELECT count(*) FROM subscriber_tags)`).Scan(&hist, &memb, &cons, &tags); err != nil {
		t.Fatal(err)
	}
	if hist != 4 || memb != 4 || cons != 4 || tags != 2 {
		t.Errorf("history %d, memberships %d, consents %d, tags %d: want 4, 4, 4, 2", hist, memb, cons, tags)
	}
}

// A trigger someone creates while an import runs is seen at the next
// batch: each unchecked merge looks again, under a lock that CREATE
// TRIGGER waits for.
func TestImportTriggerCreatedMidImportIsHonoured(t *testing.T) {
	ctx := context.Background()
	db := testutil.OpenStore(t, testutil.EngineByName(t, "postgres"))
	ring, err := token.NewKeyring(time.Now, token.Key{ID: "k1", Secret: []byte("first-secret-0123456789abcdefgh")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenSubscribers(ctx, db, subscribers.Options{Keyring: ring}); err != nil {
		t.Fatal(err)
	}
	sess, err := store.Subscribers(db).BeginImport(ctx, subscribers.ImportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close(ctx, false)
	// (Where the role may not set session_replication_role the merge is
	// always checked, and the trigger sees the rows all the same.)
	t.Logf("unchecked merge at the start: %v", postgres.ImportUnchecked(sess))
	for _, q := range []string{
		`CREATE TABLE history_seen (subscriber_id bigint NOT NULL)`,
		`CREATE FUNCTION history_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO history_seen VALUES (NEW.subscriber_id); RETURN NEW; END; $$`,
		`CREATE TRIGGER history_seen AFTER INSERT ON status_history FOR EACH ROW EXECUTE FUNCTION history_seen()`,
	} {
		if _, err := db.SQL.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := sess.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	listID, err := tx.ListID(ctx, subscribers.DefaultList)
	if err != nil {
		t.Fatal(err)
	}
	rows := []*subscribers.NewRow{
		{Line: 2, Email: "a@example.jp", Key: "a@example.jp", Name: "甲", Status: subscribers.Pending, Regions: 1, Topics: 1},
		{Line: 3, Email: "b@example.jp", Key: "b@example.jp", Name: "乙", Status: subscribers.Pending, Regions: 1, Topics: 1},
	}
	if _, err := tx.InsertNew(ctx, subscribers.NewBatch{ListID: listID, ListKey: subscribers.DefaultList, Cause: "import", At: time.Now(), Rows: rows}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var seen int
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM history_seen`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if seen != 2 {
		t.Errorf("the trigger created after the import began saw %d of 2 history entries", seen)
	}
}
