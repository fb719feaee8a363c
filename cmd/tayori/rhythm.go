package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/tayori-news/tayori/internal/store"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/rhythm"
	"github.com/tayori-news/tayori/web"
)

// rhythmRunner wires the console's recurring send rules: an issue is the
// one the editors stored under the month's slug (the composer's), or else
// <issuesDir>/<slug>.md or .txt; it is ready when it exists and the lint
// finds no error.
func (a *app) rhythmRunner(ctx context.Context, issuesDir string) (*rhythm.Runner, error) {
	sdb, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := a.deliveryService(ctx)
	if err != nil {
		return nil, err
	}
	st := store.Rhythm(sdb)
	issues := web.NewStore(store.Web(sdb), nil)
	fromDir := issueFromDir(issuesDir)
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
	return rhythm.NewRunner(st, svc, ready, load, rhythm.Config{BaseURL: a.cfg.BaseURL}, a.logger), nil
}

// withRhythm makes sch apply the console's send rules too.
func (a *app) withRhythm(ctx context.Context, sch queue.Schedule, issuesDir string) (queue.Schedule, error) {
	r, err := a.rhythmRunner(ctx, issuesDir)
	if err != nil {
		return sch, fmt.Errorf("monthly rhythm: %w", err)
	}
	sch.Every = r.Tick
	if sch.Location == nil {
		sch.Location = a.location()
	}
	return sch, nil
}
