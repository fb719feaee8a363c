// Package schema holds Tayori's database schema, one goose migration
// history per engine, embedded in the binary:
//
//	sqlite/   the embedded default
//	postgres/ the shared store
//
// There is no release yet, so each engine's history starts at one initial
// schema (one file per area: subscribers, web, queue, automation). From
// here on every schema change is a new migration on both engines, with
// the same number.
package schema

import (
	"embed"
	"io/fs"
)

//go:embed sqlite postgres
var files embed.FS

// SQLite is the SQLite history (files like "00001_subscribers.sql").
func SQLite() fs.FS { return sub("sqlite") }

// Postgres is the PostgreSQL history, numbered as SQLite's.
func Postgres() fs.FS { return sub("postgres") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the directory is embedded: cannot happen
	}
	return f
}
