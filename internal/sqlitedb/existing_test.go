package sqlitedb_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// OpenExisting opens a database with tables and refuses, without creating
// anything, a missing file, an empty one and one that is no database.
func TestOpenExistingRefusesWhatIsNoDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "sub", "missing.db")
	if _, err := sqlitedb.OpenExisting(ctx, missing); !errors.Is(err, sqlitedb.ErrNoDatabase) || !strings.Contains(err.Error(), missing+" does not exist") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenExisting created %s", filepath.Dir(missing))
	}
	empty := filepath.Join(dir, "empty.db")
	os.WriteFile(empty, nil, 0o600)
	if _, err := sqlitedb.OpenExisting(ctx, empty); !errors.Is(err, sqlitedb.ErrNoDatabase) || !strings.Contains(err.Error(), empty+" has no tables") {
		t.Errorf("empty file: %v", err)
	}
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 400), 0o600)
	if _, err := sqlitedb.OpenExisting(ctx, junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("a file that is no database: %v", err)
	}
	good := filepath.Join(dir, "good.db")
	db, err := sqlitedb.Open(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = sqlitedb.OpenExisting(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// FileWatch notices a database file deleted or replaced under it.
func TestFileWatchSeesDeletionAndReplacement(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tayori.db")
	os.WriteFile(p, []byte("a"), 0o600)
	w, err := sqlitedb.WatchFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Check(); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	os.WriteFile(p, []byte("written in place"), 0o600)
	if err := w.Check(); err != nil {
		t.Errorf("written in place (same file): %v", err)
	}
	other := filepath.Join(dir, "other.db")
	os.WriteFile(other, []byte("b"), 0o600)
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(); !errors.Is(err, sqlitedb.ErrFileChanged) || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("replaced: %v", err)
	}
	os.Remove(p)
	if err := w.Check(); !errors.Is(err, sqlitedb.ErrFileChanged) || !strings.Contains(err.Error(), p+" was deleted") {
		t.Errorf("deleted: %v", err)
	}
}
