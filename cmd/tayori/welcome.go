package main

import (
	"context"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/welcome"
)

// welcomeService wires the welcome mail, once, for a process that serves
// the web, where readers confirm: it joins the subscriber store's event
// sinks (beside the webhooks' outbox), so every confirmation the process
// records welcomes the reader.
func (a *app) welcomeService(ctx context.Context) (*welcome.Service, error) {
	if a.welcome != nil {
		return a.welcome, nil
	}
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := a.deliveryService(ctx)
	if err != nil {
		return nil, err
	}
	subs, err := a.subscriberStore(ctx)
	if err != nil {
		return nil, err
	}
	tcfg := a.templatesConfig()
	w, err := welcome.New(store.Welcome(db), svc, subs, welcome.LatestFromSends{Sends: svc}, welcome.Config{
		BaseURL: a.cfg.BaseURL, SenderName: tcfg.SenderName, PostalAddress: tcfg.PostalAddress, Contact: tcfg.Contact,
	}, a.logger)
	if err != nil {
		return nil, err
	}
	if err := a.addEvents(ctx, w); err != nil {
		return nil, err
	}
	a.made("welcome")
	a.welcome = w
	return w, nil
}
