package subscribers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/subscribers/token"
)

// openKeyDB opens a fresh database holding only the store_keys table.
func openKeyDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sqlitedb.Open(context.Background(), filepath.Join(tb.TempDir(), "t.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE store_keys (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID`); err != nil {
		tb.Fatal(err)
	}
	return db
}

func TestPublicIDs(t *testing.T) {
	ctx := context.Background()
	db := openKeyDB(t)
	p, err := initPublicIDKey(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	again, err := initPublicIDKey(ctx, db) // a second open keeps the first key
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range []int64{1, 2, 3, 255, 256, 1 << 40} {
		pid := p.of(id)
		if len(pid) != 22 || strings.ContainsAny(pid, "+/=") {
			t.Errorf("of(%d) = %q: want 22 base64url characters", id, pid)
		}
		if again.of(id) != pid {
			t.Errorf("of(%d) changed after reopening: %q, %q", id, pid, again.of(id))
		}
		if seen[pid] {
			t.Errorf("of(%d) = %q repeats", id, pid)
		}
		seen[pid] = true
		if got, ok := p.id(pid); !ok || got != id {
			t.Errorf("id(of(%d)) = %d, %v", id, got, ok)
		}
		// Any change to the id is refused, not mapped to another reader.
		for i := range pid {
			b := []byte(pid)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			if got, ok := p.id(string(b)); ok {
				t.Errorf("tampered %q (from %q) accepted as id %d", b, pid, got)
			}
		}
	}
	// Neighbouring ids share nothing readable.
	if a, b := p.of(1), p.of(2); a[:4] == b[:4] {
		t.Errorf("of(1) = %q and of(2) = %q share a prefix", a, b)
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 22), strings.Repeat("A", 23), "!!!!!!!!!!!!!!!!!!!!!!"} {
		if id, ok := p.id(bad); ok {
			t.Errorf("id(%q) = %d, want refused", bad, id)
		}
	}
	// Another database's key does not resolve this one's ids.
	other, err := initPublicIDKey(ctx, openKeyDB(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := other.id(p.of(7)); ok {
		t.Error("a public id resolved under another database's key")
	}
}

// TestMigrationDerivesPublicIDs applies migration 3 to a version-2
// database holding subscribers with stored public ids and rows that
// reference them, then takes it down again.
func TestMigrationDerivesPublicIDs(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v2 := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_feedback.sql"} {
		b, err := fs.ReadFile(migrations, "migrations/"+name)
		if err != nil {
			t.Fatal(err)
		}
		v2[name] = &fstest.MapFile{Data: b}
	}
	if err := sqlitedb.Migrate(ctx, db, v2, VersionTable); err != nil {
		t.Fatal(err)
	}
	const legacy = "LegacyPublicId0123456_"
	const now = "2026-01-01T00:00:00.000000Z"
	for _, q := range []string{
		`INSERT INTO subscribers (id, public_id, email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
		 VALUES (1, '` + legacy + `', 'a@example.jp', 'a@example.jp', '甲', 'active', 31, 7, '` + now + `', '` + now + `', '` + now + `')`,
		`INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at) VALUES (1, 1, 1, '` + now + `', '` + now + `')`,
		`INSERT INTO consents (subscriber_id, consented_at, method, recorded_at) VALUES (1, '` + now + `', 'import', '` + now + `')`,
		`INSERT INTO status_history (subscriber_id, at, to_status, cause) VALUES (1, '` + now + `', 'active', 'import')`,
		`INSERT INTO subscriber_tags (subscriber_id, tag) VALUES (1, 'chips')`,
		`INSERT INTO feedback_events (report_key, seq, received_at, kind, subscriber_id) VALUES ('r', 0, '` + now + `', 'soft', 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	counts := func() string {
		var b strings.Builder
		for _, tbl := range []string{"subscribers", "memberships", "consents", "status_history", "subscriber_tags"} {
			var n int
			db.QueryRow(`SELECT count(*) FROM ` + tbl).Scan(&n)
			fmt.Fprintf(&b, "%s=%d ", tbl, n)
		}
		var fb int
		db.QueryRow(`SELECT count(*) FROM feedback_events WHERE subscriber_id = 1`).Scan(&fb)
		fmt.Fprintf(&b, "feedback(1)=%d", fb)
		return b.String()
	}
	before := counts()

	ring, err := token.NewKeyring(time.Now, token.Key{ID: "k1", Secret: []byte("secret-0123456789abcdef-0123456")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, db, Options{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if after := counts(); after != before {
		t.Fatalf("rows after migration 3: %s, want %s", after, before)
	}
	old, err := s.GetByPublicID(ctx, legacy)
	if err != nil || old.ID != 1 || old.PublicID != legacy || old.Name != "甲" || len(old.Lists) != 1 {
		t.Fatalf("legacy subscriber: %+v, %v", old, err)
	}
	if _, err := s.GetByPublicID(ctx, s.pids.of(1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("derived id of a subscriber with a stored one: err = %v, want ErrNotFound", err)
	}
	// Foreign keys are enforced again on the store's connections.
	if _, err := db.Exec(`INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at) VALUES (1, 99, 1, '', '')`); err == nil {
		t.Error("membership of a missing subscriber accepted after the migration")
	}

	added, err := s.Add(ctx, NewSubscriber{Email: "b@example.jp", Lists: []string{DefaultList}})
	if err != nil {
		t.Fatal(err)
	}
	var stored *string
	if err := db.QueryRow(`SELECT public_id FROM subscribers WHERE id = ?`, added.ID).Scan(&stored); err != nil || stored != nil {
		t.Fatalf("new subscriber stores public_id %v (%v), want NULL", stored, err)
	}
	if added.PublicID != s.pids.of(added.ID) {
		t.Fatalf("new subscriber's public id %q, want the derived %q", added.PublicID, s.pids.of(added.ID))
	}
	got, err := s.GetByPublicID(ctx, added.PublicID)
	if err != nil || got.ID != added.ID {
		t.Fatalf("GetByPublicID(derived) = %+v, %v", got, err)
	}
	tok, err := s.ConfirmToken(ctx, added.ID, DefaultList)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Confirm(ctx, tok, Consent{IP: "192.0.2.1"}); err != nil || c.ID != added.ID || c.Status != Active {
		t.Fatalf("confirm through a derived id: %+v, %v", c, err)
	}
	var streamed []string
	for r, err := range s.Recipients(ctx, RecipientQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		streamed = append(streamed, r.PublicID)
	}
	if want := []string{legacy, added.PublicID}; strings.Join(streamed, ",") != strings.Join(want, ",") {
		t.Errorf("recipients' public ids %v, want %v", streamed, want)
	}

	// Running the migration again (a second process) changes nothing.
	if err := derivePublicIDsUp(ctx, db); err != nil {
		t.Fatal(err)
	}
	// Down: every derived id is stored, so links keep working at version 2.
	store, err := database.NewStore(goose.DialectSQLite3, VersionTable)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider("", db, sub, goose.WithStore(store), goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goMigrations()...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT id, public_id FROM subscribers ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id int64
		var pid string
		rows.Scan(&id, &pid)
		ids = append(ids, pid)
	}
	rows.Close()
	if want := []string{legacy, added.PublicID}; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("public ids stored at version 2: %v, want %v", ids, want)
	}
	var notNull int
	db.QueryRow(`SELECT "notnull" FROM pragma_table_info('subscribers') WHERE name = 'public_id'`).Scan(&notNull)
	if notNull != 1 {
		t.Error("public_id nullable after going down to version 2")
	}
	if _, err := db.Exec(`INSERT INTO subscribers (email, name, status, regions, topics, created_at, updated_at, status_at)
		VALUES ('c@example.jp', '', 'active', 1, 1, '', '', '')`); err == nil {
		t.Error("version 2 accepted a subscriber without a public id")
	}
	var memberships int
	db.QueryRow(`SELECT count(*) FROM memberships`).Scan(&memberships)
	if memberships != 2 {
		t.Errorf("memberships after down: %d, want 2", memberships)
	}
}

// Processes opening a fresh database together (`tayori worker` and
// `tayori send` started at once) all migrate it, including migration 3
// run outside a transaction, and agree on one public-id key.
func TestConcurrentOpensAgreeOnPublicIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "race.db")
	ring, err := token.NewKeyring(time.Now, token.Key{ID: "k1", Secret: []byte("secret-0123456789abcdef-0123456")})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	stores := make([]*Store, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		db, err := sqlitedb.Open(ctx, path) // one handle each, as separate processes have
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		go func() {
			<-start
			var err error
			stores[i], err = Open(ctx, db, Options{Keyring: ring})
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	added, err := stores[0].Add(ctx, NewSubscriber{Email: "race@example.jp"})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		got, err := s.GetByPublicID(ctx, added.PublicID)
		if err != nil || got.ID != added.ID || got.PublicID != added.PublicID {
			t.Errorf("store %d: GetByPublicID = %+v, %v", i, got, err)
		}
	}
	var notNull int
	stores[0].db.QueryRow(`SELECT "notnull" FROM pragma_table_info('subscribers') WHERE name = 'public_id'`).Scan(&notNull)
	if notNull != 0 {
		t.Error("public_id still NOT NULL after concurrent migrations")
	}
}

// A public id comes from a URL: any string is refused or names exactly
// one id, whose public id is that same string.
func FuzzPublicID(f *testing.F) {
	p, err := initPublicIDKey(context.Background(), openKeyDB(f))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{p.of(1), p.of(1 << 40), "", "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAB", "LegacyPublicId0123456_", "=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := p.id(s)
		if !ok {
			return
		}
		if id <= 0 || p.of(id) != s {
			t.Fatalf("id(%q) = %d, whose public id is %q", s, id, p.of(id))
		}
	})
}
