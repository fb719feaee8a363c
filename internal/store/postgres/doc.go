// Package postgres is Tayori's storage on PostgreSQL, the store several
// machines share: the SQL of each domain package's storage interface
// (subscribers.Storage in subscribers*.go, and the web and queue areas in
// their own files) over a *sql.DB of the pgx driver (store.Open). The
// schema is internal/store/schema/postgres, applied by store.Migrate;
// store.Subscribers and its siblings pick this package for a postgres://
// database.
//
// Everything PostgreSQL-specific stays here: $n placeholders, arrays
// (= ANY($1)) where SQLite takes JSON, COPY through pgx (the bulk import:
// (*sql.Conn).Raw gives the pgx connection), data-modifying CTEs, error
// codes (a unique violation becomes the domain's "exists" error, through
// errors.As on *pgconn.PgError, never by matching text). Unexported names
// carry their area's prefix (sub…, web…, ledger…).
package postgres
