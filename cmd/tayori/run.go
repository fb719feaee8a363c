package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// runService is one long-running part of `tayori run`. run returns when
// ctx ends (after a graceful shutdown) or when the service fails.
type runService struct {
	name string
	run  func(ctx context.Context) error
}

// serviceMaker builds one long-running service: it makes (or finds) the
// parts the service needs, and fails if it cannot, before anything runs.
type serviceMaker func(ctx context.Context) (runService, error)

// buildServices builds each service in order, so that every part is made
// once, here, rather than by services racing to make it as they start.
func buildServices(ctx context.Context, makers ...serviceMaker) ([]runService, error) {
	services := make([]runService, 0, len(makers))
	for _, m := range makers {
		s, err := m(ctx)
		if err != nil {
			return nil, err
		}
		services = append(services, s)
	}
	return services, nil
}

func newRunCmd(a *app) *cobra.Command {
	var sf scheduleFlags
	c := &cobra.Command{
		Use:   "run",
		Short: "Run worker, scheduler and web server in one process",
		Long: `Run the delivery worker, the scheduler (the console's send rules and the
optional monthly schedule), the webhook deliveries, the web server, the
daily retention purge and the audit log's trimming (TAYORI_AUDIT_DAYS) in
one process: the embedded default.

` + scheduleHelp + `

The retention purge (as ` + "`tayori subscribers purge`" + `) runs at start and every
24 hours. SIGTERM or SIGINT stops everything gracefully; so does the
database file being deleted or replaced while it runs, with an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a.issuesDir = sf.issues
			// Every service `tayori run` starts, built here in this order
			// and then run together. The store comes first: its watch
			// halts the worker's deliveries.
			services, err := buildServices(ctx,
				a.watchStoreService,
				a.workerService,
				a.schedulerService(sf),
				a.webhooksService,
				a.retentionService,
				a.auditService,
				a.webService,
			)
			if err != nil {
				return stoppedWhileStarting(ctx, err)
			}
			return runAll(ctx, a, a.withMetrics(services))
		},
	}
	sf.add(c, "")
	return c
}

// runAll runs services until ctx ends or one fails; then it stops the
// others and waits for them.
func runAll(ctx context.Context, a *app, services []runService) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, s := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
				mu.Unlock()
				a.logger.Error("service failed", "service", s.name, "err", err)
			}
			cancel() // one stops, all stop
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stoppedWhileStarting is the error of a long-running command whose
// start-up failed: none if it failed because it was told to stop
// (SIGTERM or SIGINT) while starting.
func stoppedWhileStarting(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// issueFromDir finds the month's issue in dir as <slug>.md or <slug>.txt.
func issueFromDir(dir string) queue.IssueLoader {
	return func(_ context.Context, slug string) (*compose.Issue, error) {
		for _, ext := range []string{".md", ".txt"} {
			p := filepath.Join(dir, slug+ext)
			if _, err := os.Stat(p); err == nil {
				return compose.Load(p)
			}
		}
		return nil, fmt.Errorf("no issue for %s in %s (want %s.md or %s.txt)", slug, dir, slug, slug)
	}
}

// retentionEvery is how often `tayori run` applies the retention rules.
const retentionEvery = 24 * time.Hour

// retentionService applies the retention rules of `tayori subscribers
// purge` at start and then daily until ctx ends. The purges are
// idempotent, so several `tayori run`s may each run them.
func (a *app) retentionService(ctx context.Context) (runService, error) {
	store, err := a.subscriberStore(ctx)
	if err != nil {
		return runService{}, err
	}
	return runService{name: "retention", run: func(ctx context.Context) error { return a.runRetention(ctx, store) }}, nil
}

func (a *app) runRetention(ctx context.Context, store *subscribers.Store) error {
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		pending, consents, err := purge(ctx, store, defaultPendingAfter)
		switch {
		case err == nil:
			a.logger.InfoContext(ctx, "retention purge", "unconfirmed_signups", pending, "consent_records", consents)
		case ctx.Err() == nil:
			a.logger.ErrorContext(ctx, "retention purge", "err", err) // try again tomorrow
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
