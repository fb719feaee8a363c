package store

import (
	"context"
	"database/sql"

	"github.com/tayori-news/tayori/internal/store/postgres"
	"github.com/tayori-news/tayori/internal/store/sqlite"
	"github.com/tayori-news/tayori/subscribers"
)

// Subscribers returns the subscribers storage of db's engine.
func Subscribers(db *DB) subscribers.Storage {
	if db.Engine == Postgres {
		return postgres.NewSubscribers(db.SQL)
	}
	return sqlite.NewSubscribers(db.SQL)
}

// OpenSubscribers opens the subscribers store on db, whose schema Migrate
// applied.
func OpenSubscribers(ctx context.Context, db *DB, opts subscribers.Options) (*subscribers.Store, error) {
	return subscribers.Open(ctx, Subscribers(db), opts)
}

// SubscribersOnSQLite applies the schema to a SQLite database opened by
// internal/sqlitedb and opens the subscribers store on it: for the tests
// and tools that open the file themselves.
func SubscribersOnSQLite(ctx context.Context, db *sql.DB, opts subscribers.Options) (*subscribers.Store, error) {
	sdb := &DB{SQL: db, Engine: SQLite, Display: "sqlite"}
	if err := Migrate(ctx, sdb); err != nil {
		return nil, err
	}
	return OpenSubscribers(ctx, sdb, opts)
}
