package store

import (
	"github.com/tayori-news/tayori/internal/store/postgres"
	"github.com/tayori-news/tayori/internal/store/sqlite"
	"github.com/tayori-news/tayori/rhythm"
	"github.com/tayori-news/tayori/webhooks"
	"github.com/tayori-news/tayori/welcome"
)

// Webhooks returns the webhooks' storage (endpoints, the outbox,
// deliveries and attempts) in db, on db's engine:
//
//	svc := webhooks.New(store.Webhooks(db), rdb, webhooks.Config{}, logger)
func Webhooks(db *DB) webhooks.Store {
	if db.Engine == Postgres {
		return postgres.NewWebhooks(db.SQL)
	}
	return sqlite.NewWebhooks(db.SQL)
}

// Welcome returns the welcome mail's storage (one template per list) in
// db, on db's engine.
func Welcome(db *DB) welcome.Store {
	if db.Engine == Postgres {
		return postgres.NewWelcome(db.SQL)
	}
	return sqlite.NewWelcome(db.SQL)
}

// Rhythm returns the monthly rhythm's storage (rules and their monthly
// runs) in db, on db's engine.
func Rhythm(db *DB) rhythm.Store {
	if db.Engine == Postgres {
		return postgres.NewRhythm(db.SQL)
	}
	return sqlite.NewRhythm(db.SQL)
}
