package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in     string
		engine store.Engine
		target string
		errHas string
	}{
		{in: "sqlite:data/tayori.db", engine: store.SQLite, target: "data/tayori.db"},
		{in: "sqlite:///srv/tayori.db", engine: store.SQLite, target: "/srv/tayori.db"},
		{in: "postgres://u:pw@db:5432/tayori?sslmode=require", engine: store.Postgres, target: "postgres://u:pw@db:5432/tayori?sslmode=require"},
		{in: "postgresql://db/tayori", engine: store.Postgres, target: "postgresql://db/tayori"},
		{in: "sqlite:", errHas: "file path"},
		{in: "data/tayori.db", errHas: "no scheme"},
		{in: "mysql://u:secretpw@db/x", errHas: "scheme mysql"},
		{in: "postgres://u:secretpw@/tayori", errHas: "names no host"},
		{in: "postgres://u:secretpw@db:5432", errHas: "names no database"},
		{in: "postgres://u:secretpw@db:99999999999/x%zz", errHas: "does not parse"},
	} {
		e, target, err := store.Parse(tc.in)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || !errors.Is(err, store.ErrUnsupported) {
				t.Errorf("Parse(%q) = %v, want an ErrUnsupported naming %q", tc.in, err, tc.errHas)
			}
			if err != nil && strings.Contains(err.Error(), "secretpw") {
				t.Errorf("Parse(%q): the error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || e != tc.engine || target != tc.target {
			t.Errorf("Parse(%q) = %s, %q, %v; want %s, %q", tc.in, e, target, err, tc.engine, tc.target)
		}
	}
}

func TestOpenSQLiteNeedsAnExistingFile(t *testing.T) {
	_, err := store.Open(context.Background(), "sqlite:"+t.TempDir()+"/none.db")
	if !errors.Is(err, sqlitedb.ErrNoDatabase) {
		t.Fatalf("Open of a missing file = %v, want ErrNoDatabase", err)
	}
}

func TestOpenPostgresDownSaysSoWithoutPassword(t *testing.T) {
	old := store.ConnectTimeout
	store.ConnectTimeout = 700 * time.Millisecond
	defer func() { store.ConnectTimeout = old }()
	start := time.Now()
	_, err := store.Open(context.Background(), "postgres://tayori:secretpw@127.0.0.1:1/tayori?sslmode=disable")
	if err == nil || !strings.Contains(err.Error(), "does not answer") || strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("Open of a server that is down = %v, want 'does not answer' without the password", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("gave up after %v: it should retry with backoff for ConnectTimeout", d)
	}
}

func TestMigrateBothEngines(t *testing.T) {
	for _, e := range testutil.Engines() {
		t.Run(string(e.Name), func(t *testing.T) {
			db := testutil.OpenStore(t, e)
			if db.Engine != e.Name {
				t.Fatalf("engine %s, want %s", db.Engine, e.Name)
			}
			// Migrating again is a no-op.
			if err := store.Migrate(context.Background(), db); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A database whose schema is newer than this binary's is refused with
// ErrNewerSchema, on both engines, and left as it is.
func TestMigrateRefusesANewerSchema(t *testing.T) {
	for _, e := range testutil.Engines() {
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			db := testutil.OpenStore(t, e)
			var latest int64
			if err := db.SQL.QueryRowContext(ctx, `SELECT max(version_id) FROM `+store.VersionTable).Scan(&latest); err != nil || latest < 1 {
				t.Fatalf("schema version %d, %v: want the subscribers migration applied", latest, err)
			}
			if _, err := db.SQL.ExecContext(ctx, `INSERT INTO `+store.VersionTable+` (version_id, is_applied) VALUES ($1, true)`, latest+1000); err != nil {
				t.Fatal(err)
			}
			err := store.Migrate(ctx, db)
			if !errors.Is(err, store.ErrNewerSchema) || !strings.Contains(err.Error(), fmt.Sprint(latest+1000)) {
				t.Fatalf("Migrate of a newer schema = %v, want ErrNewerSchema naming version %d", err, latest+1000)
			}
			var n int
			if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM subscribers`).Scan(&n); err != nil {
				t.Errorf("the newer database was touched: %v", err)
			}
		})
	}
}
