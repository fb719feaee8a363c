package main

import (
	"context"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/queue"
)

// ledger returns the send ledger (queue.Ledger) on the process's
// database, whose schema it brings up to date first: the queue no longer
// migrates by itself (store.Migrate does). Its statements are released
// when run returns, before the database closes.
func (a *app) ledger(ctx context.Context) (queue.Ledger, error) {
	db, err := a.openStore(ctx) // migrated
	if err != nil {
		return nil, err
	}
	l := store.Ledger(db)
	a.closers = append(a.closers, l.Close)
	return l, nil
}
