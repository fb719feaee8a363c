package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrNoDatabase is what OpenExisting's error for a database file that
// does not exist or holds no tables (a *NoDatabaseError) matches.
var ErrNoDatabase = errors.New("no database")

// NoDatabaseError says that the database at Path does not exist, or
// exists and holds no tables (Empty).
type NoDatabaseError struct {
	Path  string
	Empty bool
}

func (e *NoDatabaseError) Error() string {
	if e.Empty {
		return "database " + e.Path + " has no tables"
	}
	return "database " + e.Path + " does not exist"
}

// Is makes errors.Is(err, ErrNoDatabase) true.
func (e *NoDatabaseError) Is(target error) bool { return target == ErrNoDatabase }

// OpenExisting opens the database at path like Open, but only one that
// exists and holds tables: a missing or empty file is a *NoDatabaseError
// (matching ErrNoDatabase) and a
// file that is not a database (or cannot be read) is an error naming it,
// never a new, empty database.
func OpenExisting(ctx context.Context, path string) (*sql.DB, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NoDatabaseError{Path: path}
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("open database %s: it is a directory", path)
	}
	db, err := Open(ctx, path)
	if err != nil {
		return nil, err
	}
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&tables); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if tables == 0 {
		db.Close()
		return nil, &NoDatabaseError{Path: path, Empty: true}
	}
	return db, nil
}

// ErrFileChanged is what FileWatch.Check's error (a *FileChangedError)
// matches once the watched path no longer names the file it named when
// the watch began.
var ErrFileChanged = errors.New("database file changed")

// FileChangedError says how the file at Path changed: deleted, replaced
// by another file, or no longer readable (Err).
type FileChangedError struct {
	Path     string
	Deleted  bool
	Replaced bool
	Err      error
}

func (e *FileChangedError) Error() string {
	switch {
	case e.Deleted:
		return "database " + e.Path + " was deleted"
	case e.Replaced:
		return "database " + e.Path + " was replaced by another file"
	}
	return "database " + e.Path + " cannot be read: " + e.Err.Error()
}

// Is makes errors.Is(err, ErrFileChanged) true.
func (e *FileChangedError) Is(target error) bool { return target == ErrFileChanged }

// Unwrap returns the error of a file that cannot be read.
func (e *FileChangedError) Unwrap() error { return e.Err }

// FileWatch tells whether a database's path still names the file that
// was opened. A process that keeps a database open would otherwise go on
// writing into a file deleted under it (which vanishes when the process
// ends) or into the old file after another was moved into its place.
type FileWatch struct {
	path string
	fi   fs.FileInfo
}

// WatchFile starts watching path, which must exist.
func WatchFile(path string) (*FileWatch, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("watch database file: %w", err)
	}
	return &FileWatch{path: path, fi: fi}, nil
}

// Path returns the watched path.
func (w *FileWatch) Path() string { return w.path }

// Check returns nil while the path names the same file, and a
// *FileChangedError once it was deleted or replaced.
func (w *FileWatch) Check() error {
	fi, err := os.Stat(w.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &FileChangedError{Path: w.path, Deleted: true}
	case err != nil:
		return &FileChangedError{Path: w.path, Err: err}
	case !os.SameFile(w.fi, fi):
		return &FileChangedError{Path: w.path, Replaced: true}
	}
	return nil
}
