package main

import (
	"context"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/webhooks"
)

// webhookService returns the webhooks with Redis, made once: the
// console's and the API's endpoints and replays, and the worker's
// deliveries. (webhookEmitter, in wiring.go, is the outbox writer that
// needs no Redis.)
func (a *app) webhookService(ctx context.Context) (*webhooks.Service, error) {
	if a.hooks != nil {
		return a.hooks, nil
	}
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	rdb, err := a.redisClient(ctx)
	if err != nil {
		return nil, err
	}
	svc := webhooks.New(store.Webhooks(db), rdb, webhooks.Config{KeepLog: time.Duration(a.cfg.WebhookLogDays) * 24 * time.Hour}, a.logger)
	a.made("webhooks")
	a.closers = append(a.closers, svc.Close)
	a.hooks = svc
	return svc, nil
}

// webhooksService is the service that delivers webhooks until ctx ends.
func (a *app) webhooksService(ctx context.Context) (runService, error) {
	svc, err := a.webhookService(ctx)
	if err != nil {
		return runService{}, err
	}
	return runService{name: "webhooks", run: svc.Run}, nil
}
