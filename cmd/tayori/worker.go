package main

import (
	"context"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/queue"
)

func newWorkerCmd(a *app) *cobra.Command {
	var sf scheduleFlags
	c := &cobra.Command{
		Use:   "worker",
		Short: "Run the delivery worker and the scheduler",
		Long: `Run the Asynq worker that plans sends and delivers each reader's copy, the
webhook deliveries, the scheduler, and the daily trimming of the console's
audit log to TAYORI_AUDIT_DAYS.

Run as many as you like, on one machine or several: they share the rate
limit (TAYORI_RATE) and the connection cap (TAYORI_SMTP_MAX_CONNS) through
Redis; with several machines TAYORI_DB names one PostgreSQL database they
all use. At start it brings the database's tables up to date. On SIGTERM or
SIGINT the worker stops taking work, lets the copies in flight finish (up to
TAYORI_SHUTDOWN_TIMEOUT) and requeues the rest. Should its SQLite file be
deleted or replaced while it runs, it stops with an error.

` + scheduleHelp + `

--schedule=false leaves the scheduling to the other processes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a.issuesDir = sf.issues
			// Every service `tayori worker` starts; the store first: its
			// watch halts the worker's deliveries.
			makers := []serviceMaker{
				a.watchStoreService,
				a.workerService,
				a.webhooksService,
				a.auditService,
			}
			if sf.on {
				makers = append(makers, a.schedulerService(sf))
			}
			services, err := buildServices(ctx, makers...)
			if err != nil {
				return stoppedWhileStarting(ctx, err)
			}
			return runAll(ctx, a, a.withMetrics(services))
		},
	}
	sf.add(c, "worker")
	return c
}

// workerService serves the delivery queues until ctx ends.
func (a *app) workerService(ctx context.Context) (runService, error) {
	svc, err := a.deliveryService(ctx)
	if err != nil {
		return runService{}, err
	}
	return runService{name: "worker", run: func(ctx context.Context) error {
		tuneGC(a.getenv)
		srv := svc.NewServer(queue.ServerConfig{Concurrency: a.cfg.Concurrency, ShutdownTimeout: a.cfg.ShutdownTimeout})
		a.logger.InfoContext(ctx, "worker started", "concurrency", a.cfg.Concurrency, "rate", a.cfg.RatePerSecond)
		err := srv.Run(ctx)
		a.logger.Info("worker stopped")
		return err
	}}, nil
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
