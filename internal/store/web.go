package store

import (
	"github.com/tayori-news/tayori/internal/store/postgres"
	"github.com/tayori-news/tayori/internal/store/sqlite"
	"github.com/tayori-news/tayori/web"
)

// Web returns the web package's storage (editors, sessions, API tokens,
// issues and their revisions) in db, on db's engine:
//
//	st := web.NewStore(store.Web(db), nil)
func Web(db *DB) web.Storage {
	if db.Engine == Postgres {
		return postgres.NewWeb(db.SQL)
	}
	return sqlite.NewWeb(db.SQL)
}
