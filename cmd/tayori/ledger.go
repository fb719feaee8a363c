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
	db, err := a.openDB(ctx)
	if err != nil {
		return nil, err
	}
	sdb := &store.DB{SQL: db, Engine: store.SQLite, Display: a.cfg.DB}
	if err := store.Migrate(ctx, sdb); err != nil {
		return nil, err
	}
	l := store.Ledger(sdb)
	a.closers = append(a.closers, l.Close)
	return l, nil
}
