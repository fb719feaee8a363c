package main

import (
	"context"
	"database/sql"

	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/templates"
	"github.com/tayori-news/tayori/welcome"
)

// welcomeService wires the welcome mail for the web server, where readers
// confirm: the subscriber store subs then tells it (and the webhooks) of
// each confirmation.
func (a *app) welcomeService(ctx context.Context, db *sql.DB, svc *queue.Service, subs *subscribers.Store, tcfg templates.Config) (*welcome.Service, error) {
	st, err := welcome.OpenSQLStore(ctx, db)
	if err != nil {
		return nil, err
	}
	w, err := welcome.New(st, svc, subs, welcome.LatestFromSends{Sends: svc}, welcome.Config{
		BaseURL: a.cfg.BaseURL, SenderName: tcfg.SenderName, PostalAddress: tcfg.PostalAddress, Contact: tcfg.Contact,
	}, a.logger)
	if err != nil {
		return nil, err
	}
	ev, err := a.webhookEmitter(ctx, db)
	if err != nil {
		return nil, err
	}
	subs.SetEvents(ev, w)
	return w, nil
}
