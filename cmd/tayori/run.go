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
)

// runService is one long-running part of `tayori run`. run returns when
// ctx ends (after a graceful shutdown) or when the service fails.
type runService struct {
	name string
	run  func(ctx context.Context) error
}

// extraRunServices is the hook through which other command files add
// services to `tayori run`; the web server registers itself here (from an
// init function in its own file) once it exists:
//
//	func init() {
//		extraRunServices = append(extraRunServices, func(ctx context.Context, a *app) (runService, error) {
//			return runService{name: "web", run: a.serveWeb}, nil
//		})
//	}
var extraRunServices []func(ctx context.Context, a *app) (runService, error)

func newRunCmd(a *app) *cobra.Command {
	var (
		monthly, monthlyList, issuesDir string
		notAfter                        time.Duration
	)
	c := &cobra.Command{
		Use:   "run",
		Short: "Run worker, scheduler and web server in one process",
		Long: `Run the delivery worker, the optional monthly schedule, the web server
and the daily retention purge in one process: the embedded default.

  --monthly SPEC  cron spec in TAYORI_TIMEZONE for the monthly send,
                  e.g. "0 9 1 * *" (09:00 on the 1st); the tick sends the
                  issue <--issues>/<YYYY-MM>.md (or .txt) to --monthly-list.

The retention purge (as ` + "`tayori subscribers purge`" + `) runs at start and every
24 hours. Only one of several ` + "`tayori run`" + ` processes schedules (a Redis lease); all of
them deliver. SIGTERM or SIGINT stops everything gracefully; so does the
database file being deleted or replaced while it runs, with an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// Opened here, before the services start: the store watch
			// halts the worker's deliveries.
			if _, err := a.openStore(ctx); err != nil {
				return stoppedWhileStarting(ctx, err)
			}
			if _, err := a.deliveryService(ctx); err != nil {
				return stoppedWhileStarting(ctx, err)
			}
			services := []runService{{name: "worker", run: a.runWorker}, {name: "retention", run: a.runRetention},
				{name: "store", run: a.watchStore}}
			// The scheduler always runs: the console's send rules (rhythm.go)
			// tick in it, and the --monthly spec if given.
			svc, err := a.deliveryService(ctx)
			if err != nil {
				return err
			}
			sch := queue.Schedule{Location: a.location(), NotAfter: notAfter}
			if monthly != "" {
				sch.Spec, sch.List, sch.Load = monthly, monthlyList, issueFromDir(issuesDir)
			}
			if sch, err = a.withRhythm(ctx, sch, issuesDir); err != nil {
				return err
			}
			services = append(services, runService{name: "scheduler", run: func(ctx context.Context) error {
				return svc.RunScheduler(ctx, sch)
			}})
			for _, add := range extraRunServices {
				s, err := add(ctx, a)
				if err != nil {
					return stoppedWhileStarting(ctx, err)
				}
				services = append(services, s)
			}
			return runAll(ctx, a, a.withMetrics(services))
		},
	}
	f := c.Flags()
	f.StringVar(&monthly, "monthly", "", "cron spec of the monthly send (empty: no schedule)")
	f.StringVar(&monthlyList, "monthly-list", "monthly", "list of the monthly send")
	f.StringVar(&issuesDir, "issues", "issues", "directory of the monthly issues, named YYYY-MM.md or YYYY-MM.txt")
	f.DurationVar(&notAfter, "monthly-not-after", 6*time.Hour, "how late a monthly send may still start")
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

// runRetention applies the retention rules of `tayori subscribers purge`
// at start and then daily until ctx ends. The purges are idempotent, so
// several `tayori run`s may each run them.
func (a *app) runRetention(ctx context.Context) error {
	store, err := a.subscriberStore(ctx)
	if err != nil {
		return err
	}
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
