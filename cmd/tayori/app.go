package main

import (
	"database/sql"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/internal/config"
	"github.com/tayori-news/tayori/internal/metrics"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/rhythm"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/templates"
	"github.com/tayori-news/tayori/web"
	"github.com/tayori-news/tayori/webhooks"
	"github.com/tayori-news/tayori/welcome"
)

// app carries what every command needs: the effective configuration, the
// logger and the standard streams. Resources (database, Redis) are opened
// on demand by the commands that need them, through the methods in
// resources.go, and closed when run returns.
type app struct {
	cfg    config.Config
	logger *slog.Logger
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	store    *store.DB           // openStore's
	db       *sql.DB             // store.SQL
	dbWatch  *sqlitedb.FileWatch // whether the database file is still the one opened
	rdb      redis.UniversalClient
	delivery *queue.Service   // deliveryService's, opened once per run
	mx       *metrics.Metrics // the process's metrics, made once (processMetrics)
	closers  []func() error

	// The parts the commands share, each made once (wiring.go).
	subs       *subscribers.Store // subscriberStore's
	events     *eventSinks        // the subscriber store's event sinks
	emitter    *webhooks.Service  // webhookEmitter's: the outbox, no Redis
	hooks      *webhooks.Service  // webhookService's: with Redis
	tmpl       *templates.Renderer
	sendLedger queue.Ledger
	gate       *feedback.Gate
	welcome    *welcome.Service // welcomeService's
	rhythm     *rhythm.Runner   // rhythmRunner's
	clicks     *clicks.Counter  // clickCounter's
	web        *web.Store       // webStore's
	issuesDir  string           // where the rhythm and the monthly schedule find issues ("issues" if empty)
	parts      parts            // what was made, by name (wiring.go)
}

// location is TAYORI_TIMEZONE (the configuration has checked that it
// loads), or Local should it not.
func (a *app) location() *time.Location {
	if loc, err := time.LoadLocation(a.cfg.Timezone); err == nil {
		return loc
	}
	return time.Local
}

// timeLayout is how the CLI shows a time, as the console does: minutes and
// the zone's abbreviation, in TAYORI_TIMEZONE.
const timeLayout = "2006-01-02 15:04 MST"

// when formats t for people in TAYORI_TIMEZONE, as the console does
// (JSON output keeps RFC 3339, as the API does).
func (a *app) when(t time.Time) string {
	return t.In(a.location()).Format(timeLayout)
}
