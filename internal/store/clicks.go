package store

import (
	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/internal/store/postgres"
	"github.com/tayori-news/tayori/internal/store/sqlite"
)

// Clicks returns the aggregate click counts' storage in db, on db's
// engine:
//
//	c, err := clicks.New(store.Clicks(db), subs, signer, clicks.Config{BaseURL: base})
func Clicks(db *DB) clicks.Store {
	if db.Engine == Postgres {
		return postgres.NewClicks(db.SQL)
	}
	return sqlite.NewClicks(db.SQL)
}
