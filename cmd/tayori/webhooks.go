package main

import (
	"context"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/webhooks"
)

func init() {
	// `tayori run` delivers webhooks too (`tayori worker` adds it itself).
	extraRunServices = append(extraRunServices, func(ctx context.Context, a *app) (runService, error) {
		return runService{name: "webhooks", run: a.runWebhooks}, nil
	})
}

// webhookEmitter returns the outbox writer the subscriber store and the
// queue emit their events through. It needs no Redis: a CLI command
// (`tayori subscribers unsubscribe`, `tayori feedback ingest`) records its
// events and a worker delivers them.
func (a *app) webhookEmitter(db *store.DB) *webhooks.Service {
	return webhooks.New(store.Webhooks(db), nil, webhooks.Config{}, a.logger)
}

// webhookService returns the webhooks with Redis: the console's and the
// API's endpoints and replays, and the worker's deliveries.
func (a *app) webhookService(ctx context.Context) (*webhooks.Service, error) {
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	rdb, err := a.redisClient(ctx)
	if err != nil {
		return nil, err
	}
	svc := webhooks.New(store.Webhooks(db), rdb, webhooks.Config{KeepLog: time.Duration(a.cfg.WebhookLogDays) * 24 * time.Hour}, a.logger)
	a.closers = append(a.closers, svc.Close)
	return svc, nil
}

// runWebhooks delivers webhooks until ctx ends.
func (a *app) runWebhooks(ctx context.Context) error {
	svc, err := a.webhookService(ctx)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
