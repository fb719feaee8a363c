package store

import (
	"github.com/tayori-news/tayori/internal/store/postgres"
	"github.com/tayori-news/tayori/internal/store/sqlite"
	"github.com/tayori-news/tayori/queue"
)

// Ledger returns the send ledger (queue.Ledger) on db's engine. db's
// schema must be migrated (Migrate).
func Ledger(db *DB) queue.Ledger {
	if db.Engine == Postgres {
		return postgres.NewLedger(db.SQL)
	}
	return sqlite.NewLedger(db.SQL)
}
