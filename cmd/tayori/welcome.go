package main

import (
	"context"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/templates"
	"github.com/tayori-news/tayori/welcome"
)

// welcomeService wires the welcome mail for the web server, where readers
// confirm: the subscriber store subs then tells it (and the webhooks) of
// each confirmation.
func (a *app) welcomeService(ctx context.Context, db *store.DB, svc *queue.Service, subs *subscribers.Store, tcfg templates.Config) (*welcome.Service, error) {
	w, err := welcome.New(store.Welcome(db), svc, subs, welcome.LatestFromSends{Sends: svc}, welcome.Config{
		BaseURL: a.cfg.BaseURL, SenderName: tcfg.SenderName, PostalAddress: tcfg.PostalAddress, Contact: tcfg.Contact,
	}, a.logger)
	if err != nil {
		return nil, err
	}
	subs.SetEvents(a.webhookEmitter(db), w)
	return w, nil
}
