// Package sqlite is Tayori's storage on SQLite, the embedded default: the
// SQL of each domain package's storage interface (subscribers.Storage in
// subscribers*.go, and the web and queue areas in their own files), over
// a *sql.DB opened by internal/sqlitedb (WAL, busy timeout, transactions
// that begin IMMEDIATE). The schema is internal/store/schema/sqlite,
// applied by store.Migrate; store.Subscribers and its siblings pick this
// package for a sqlite: database.
//
// Everything SQLite-specific stays here: PRAGMAs, the binary-JSON arrays
// of the bulk import (internal/jsonb), checkpointing the WAL beside an
// import, INDEXED BY and WITHOUT ROWID, the rowid tricks. Unexported names
// carry their area's prefix (sub…, web…, ledger…).
package sqlite
