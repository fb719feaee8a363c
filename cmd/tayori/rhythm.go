package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/rhythm"
	"github.com/tayori-news/tayori/web"
)

// rhythmRunner wires the console's recurring send rules, once: an issue
// is the one the editors stored under the month's slug (the composer's),
// or else <a.issuesDir>/<slug>.md or .txt; it is ready when it exists and
// the lint finds no error. The console (web server) and the scheduler of
// one process share it.
func (a *app) rhythmRunner(ctx context.Context) (*rhythm.Runner, error) {
	if a.rhythm != nil {
		return a.rhythm, nil
	}
	sdb, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := a.deliveryService(ctx)
	if err != nil {
		return nil, err
	}
	st := store.Rhythm(sdb)
	issues, err := a.webStore(ctx)
	if err != nil {
		return nil, err
	}
	fromDir := issueFromDir(a.issues())
	load := func(ctx context.Context, slug string) (*compose.Issue, error) {
		is, err := issues.Issue(ctx, slug)
		if err == nil && is.Issue != nil {
			return is.Issue, nil
		}
		if err != nil && !errors.Is(err, web.ErrNotFound) {
			return nil, err
		}
		return fromDir(ctx, slug)
	}
	ready := func(ctx context.Context, slug string) (bool, error) {
		is, err := load(ctx, slug)
		if err != nil {
			return false, nil // no issue for the month yet
		}
		for _, p := range compose.Check(is) {
			if p.Severity == compose.SeverityError {
				return false, nil
			}
		}
		return true, nil
	}
	a.rhythm = rhythm.NewRunner(st, svc, ready, load, rhythm.Config{BaseURL: a.cfg.BaseURL}, a.logger)
	a.made("rhythm")
	return a.rhythm, nil
}

// issues is the directory of the monthly issues: --issues of `tayori run`
// or `tayori worker`, else TAYORI_ISSUES_DIR (default "issues").
func (a *app) issues() string {
	switch {
	case a.issuesDir != "":
		return a.issuesDir
	case a.cfg.IssuesDir != "":
		return a.cfg.IssuesDir
	}
	return "issues"
}

// withRhythm makes sch apply the console's send rules too.
func (a *app) withRhythm(ctx context.Context, sch queue.Schedule) (queue.Schedule, error) {
	r, err := a.rhythmRunner(ctx)
	if err != nil {
		return sch, fmt.Errorf("monthly rhythm: %w", err)
	}
	sch.Every = r.Tick
	if sch.Location == nil {
		sch.Location = a.location()
	}
	return sch, nil
}
