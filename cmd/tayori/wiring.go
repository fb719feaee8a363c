package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/queue/bind"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
	"github.com/tayori-news/tayori/templates"
	"github.com/tayori-news/tayori/web"
	"github.com/tayori-news/tayori/webhooks"
)

// The parts every command shares are made here, once per process, and
// kept on the app: the subscriber store with its event sinks, the
// renderer, the send ledger, the send gate and the web store. The web server, the
// worker, the scheduler, the retention purge and the CLI commands of one
// process all get the same ones, so that an event a reader's change
// causes reaches the same sinks whichever part made the change.
//
// They are made before the long-running services start (run.go builds
// every service first, then runs them), so no two goroutines make one.

// parts counts what the process made, by name ("subscribers",
// "renderer", "gate", …): a test checks that `tayori run` makes each
// once.
type parts map[string]int

func (a *app) made(name string) {
	if a.parts == nil {
		a.parts = parts{}
	}
	a.parts[name]++
}

// subscriberStore returns the process's subscriber store on the shared
// database with the configured keys (TAYORI_SECRET, newest first),
// opened once. Its events go to a.events (eventSinks): the webhooks'
// outbox always, and whatever a long-running command adds (the welcome
// mail in a process that serves the web).
func (a *app) subscriberStore(ctx context.Context) (*subscribers.Store, error) {
	if a.subs != nil {
		return a.subs, nil
	}
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]token.Key, len(a.cfg.Secrets))
	for i, s := range a.cfg.Secrets {
		keys[i] = token.Key{ID: s.ID, Secret: s.Key}
	}
	ring, err := token.NewKeyring(time.Now, keys...)
	if err != nil {
		return nil, fmt.Errorf("TAYORI_SECRET: %w", err)
	}
	st, err := subscribers.Open(ctx, store.Subscribers(db), subscribers.Options{Keyring: ring, Logger: a.logger})
	if err != nil {
		return nil, err
	}
	a.made("subscribers")
	// The store's only SetEvents: a sink added later (addEvents) joins
	// the hub rather than replacing the sinks already there.
	st.SetEvents(a.eventHub(db))
	a.subs = st
	return st, nil
}

// eventHub returns the process's subscriber event sinks, starting with
// the webhooks' outbox (webhookEmitter).
func (a *app) eventHub(db *store.DB) *eventSinks {
	if a.events == nil {
		a.events = &eventSinks{sinks: []subscribers.Events{a.webhookEmitter(db)}}
	}
	return a.events
}

// addEvents adds a sink of the subscriber store's events (the welcome
// mail), keeping the others.
func (a *app) addEvents(ctx context.Context, e subscribers.Events) error {
	if _, err := a.subscriberStore(ctx); err != nil {
		return err
	}
	a.events.add(e)
	return nil
}

// eventSinks hands each event to every sink, in the order they were
// added. subscribers.Store.SetEvents replaces its sinks; the app calls it
// once, with this, so that adding one never drops another.
type eventSinks struct {
	mu    sync.RWMutex
	sinks []subscribers.Events
}

var _ subscribers.Events = (*eventSinks)(nil)

func (e *eventSinks) add(s subscribers.Events) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sinks = append(e.sinks, s)
}

// Emit hands the event to every sink.
func (e *eventSinks) Emit(ctx context.Context, typ string, data any) {
	e.mu.RLock()
	sinks := e.sinks
	e.mu.RUnlock()
	for _, s := range sinks {
		s.Emit(ctx, typ, data)
	}
}

// webhookEmitter returns the outbox writer the subscriber store and the
// queue emit their events through, made once. It needs no Redis: a CLI
// command (`tayori subscribers unsubscribe`, `tayori feedback ingest`)
// records its events and a worker delivers them.
func (a *app) webhookEmitter(db *store.DB) *webhooks.Service {
	if a.emitter == nil {
		a.emitter = webhooks.New(store.Webhooks(db), nil, webhooks.Config{}, a.logger)
		a.made("webhook emitter")
	}
	return a.emitter
}

// webStore returns the process's web store (editors, sessions, tokens,
// stored issues, the audit log) on the shared database, made once: the
// web server, the monthly rhythm's issue loader, the audit log's trimming
// and the `tayori editors` commands use it.
func (a *app) webStore(ctx context.Context) (*web.Store, error) {
	if a.web != nil {
		return a.web, nil
	}
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	a.web = web.NewStore(store.Web(db), nil)
	a.made("web store")
	return a.web, nil
}

// renderer returns the process's templates renderer (with its cache of
// rendered variants), made once from templatesConfig.
func (a *app) renderer() (*templates.Renderer, error) {
	if a.tmpl != nil {
		return a.tmpl, nil
	}
	r, err := templates.New(a.templatesConfig())
	if err != nil {
		return nil, err
	}
	a.made("renderer")
	a.tmpl = r
	return r, nil
}

// ledger returns the send ledger (queue.Ledger) on the process's
// database, whose schema it brings up to date first: the queue no longer
// migrates by itself (store.Migrate does). Made once; its statements are
// released when run returns, before the database closes.
func (a *app) ledger(ctx context.Context) (queue.Ledger, error) {
	if a.sendLedger != nil {
		return a.sendLedger, nil
	}
	db, err := a.openStore(ctx) // migrated
	if err != nil {
		return nil, err
	}
	l := store.Ledger(db)
	a.made("ledger")
	a.closers = append(a.closers, l.Close)
	a.sendLedger = l
	return l, nil
}

// sendGate returns the send gate (complaints and refusals against the
// copies sent), made once on the ledger and the subscriber store.
func (a *app) sendGate(ctx context.Context) (*feedback.Gate, error) {
	if a.gate != nil {
		return a.gate, nil
	}
	ledger, err := a.ledger(ctx)
	if err != nil {
		return nil, err
	}
	subs, err := a.subscriberStore(ctx)
	if err != nil {
		return nil, err
	}
	g, err := bind.SendGate(ledger, subs, nil)
	if err != nil {
		return nil, err
	}
	a.made("gate")
	a.gate = g
	return g, nil
}
