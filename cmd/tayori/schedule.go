package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/queue"
)

// scheduleHelp describes the scheduler's flags, for `tayori run` and
// `tayori worker`.
const scheduleHelp = `The scheduler applies the console's send rules (/admin/rhythm) and, with
--monthly, a fixed monthly send:

  --monthly SPEC  cron spec in TAYORI_TIMEZONE for the monthly send,
                  e.g. "0 9 1 * *" (09:00 on the 1st); the tick sends the
                  issue <--issues>/<YYYY-MM>.md (or .txt) to --monthly-list.

The three flags override TAYORI_MONTHLY, TAYORI_MONTHLY_LIST and
TAYORI_ISSUES_DIR. Every ` + "`tayori run`" + ` and ` + "`tayori worker`" + ` of an installation
offers to schedule; a Redis lease makes exactly one of them do it, and
another takes over within seconds if it stops. The one holding the lease
schedules with its own settings: set them in the environment (or the
configuration file) every process reads, not as flags of one process.`

// scheduleFlags are the scheduler's flags (scheduleHelp).
type scheduleFlags struct {
	monthly, list, issues string
	notAfter              time.Duration
	on                    bool // `tayori worker --schedule`
}

// add declares the flags on c; cmd "worker" adds --schedule.
func (f *scheduleFlags) add(c *cobra.Command, cmd string) {
	fs := c.Flags()
	fs.StringVar(&f.monthly, "monthly", "", "cron spec of the monthly send (default TAYORI_MONTHLY; empty: no fixed schedule, the console's rules still apply)")
	fs.StringVar(&f.list, "monthly-list", "", "list of the monthly send (default TAYORI_MONTHLY_LIST)")
	fs.StringVar(&f.issues, "issues", "", "directory of the monthly issues, named YYYY-MM.md or YYYY-MM.txt (default TAYORI_ISSUES_DIR)")
	fs.DurationVar(&f.notAfter, "monthly-not-after", 6*time.Hour, "how late a monthly send may still start")
	f.on = true
	if cmd == "worker" {
		fs.BoolVar(&f.on, "schedule", true, "offer to schedule (false: leave it to the other processes)")
	}
}

// schedulerService is the scheduler: the console's send rules
// (rhythm.go) tick in it, and the --monthly spec if given. It runs in
// every `tayori run` and `tayori worker`; only the one holding the
// scheduler's Redis lease (queue.Service.RunScheduler) schedules, the
// others wait to take over.
func (a *app) schedulerService(f scheduleFlags) serviceMaker {
	return func(ctx context.Context) (runService, error) {
		svc, err := a.deliveryService(ctx)
		if err != nil {
			return runService{}, err
		}
		sch := queue.Schedule{Location: a.location(), NotAfter: f.notAfter}
		spec, list := f.monthly, f.list
		if spec == "" {
			spec = a.cfg.Monthly
		}
		if list == "" {
			list = a.cfg.MonthlyList
		}
		if spec != "" {
			sch.Spec, sch.List, sch.Load = spec, list, issueFromDir(a.issues())
		}
		if sch, err = a.withRhythm(ctx, sch); err != nil {
			return runService{}, err
		}
		return runService{name: "scheduler", run: func(ctx context.Context) error {
			return svc.RunScheduler(ctx, sch)
		}}, nil
	}
}
