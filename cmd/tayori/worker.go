package main

import (
	"context"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/queue"
)

func newWorkerCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the delivery worker",
		Long: `Run the Asynq worker that plans sends and delivers each reader's copy.

Run as many as you like, on one machine or several: they share the rate
limit (TAYORI_RATE) and the connection cap (TAYORI_SMTP_MAX_CONNS) through
Redis; with several machines TAYORI_DB names one PostgreSQL database they
all use. At start it brings the database's tables up to date. On SIGTERM or
SIGINT the worker stops taking work, lets the copies in flight finish (up to
TAYORI_SHUTDOWN_TIMEOUT) and requeues the rest. Should its SQLite file be
deleted or replaced while it runs, it stops with an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Opened here, before the services start: the store watch
			// halts this service's deliveries.
			if _, err := a.openStore(cmd.Context()); err != nil {
				return stoppedWhileStarting(cmd.Context(), err)
			}
			if _, err := a.deliveryService(cmd.Context()); err != nil {
				return stoppedWhileStarting(cmd.Context(), err)
			}
			return runAll(cmd.Context(), a, a.withMetrics([]runService{{name: "worker", run: a.runWorker}, {name: "store", run: a.watchStore},
				{name: "webhooks", run: a.runWebhooks}}))
		},
	}
}

// runWorker serves the delivery queues until ctx ends.
func (a *app) runWorker(ctx context.Context) error {
	svc, err := a.deliveryService(ctx)
	if err != nil {
		return err
	}
	tuneGC(a.getenv)
	srv := svc.NewServer(queue.ServerConfig{Concurrency: a.cfg.Concurrency, ShutdownTimeout: a.cfg.ShutdownTimeout})
	a.logger.InfoContext(ctx, "worker started", "concurrency", a.cfg.Concurrency, "rate", a.cfg.RatePerSecond)
	err = srv.Run(ctx)
	a.logger.Info("worker stopped")
	return err
}

// workerGCPercent is the worker's GOGC unless the environment sets one.
// Its live heap is small (tens of MB: rendered variants and batches) and
// each copy's built MIME message is a fresh message-sized allocation, so collecting at 5× the live
// heap instead of 2× saves about a tenth of the CPU per message and keeps
// the peak RSS well under 100 MB (make bench).
const workerGCPercent = 400

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(workerGCPercent)
	}
}
