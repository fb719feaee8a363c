package main

import (
	"context"
	"time"

	"github.com/tayori-news/tayori/web"
)

// auditEvery is how often a worker trims the audit log.
const auditEvery = 24 * time.Hour

// auditService trims the console's audit log to TAYORI_AUDIT_DAYS at
// start and then daily until ctx ends, in every `tayori worker` and
// `tayori run` (as the webhooks' upkeep trims their delivery log to
// TAYORI_WEBHOOK_LOG_DAYS). Trimming is idempotent, so several workers
// may each do it.
func (a *app) auditService(ctx context.Context) (runService, error) {
	st, err := a.webStore(ctx)
	if err != nil {
		return runService{}, err
	}
	keep := time.Duration(a.cfg.AuditDays) * 24 * time.Hour
	return runService{name: "audit", run: func(ctx context.Context) error {
		a.trimAudit(ctx, st, keep, auditEvery)
		return nil
	}}, nil
}

// trimAudit trims the audit log to keep now and every every until ctx
// ends; a failure is logged and tried again next time.
func (a *app) trimAudit(ctx context.Context, st *web.Store, keep, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := st.TrimAudit(ctx, keep)
		switch {
		case err != nil && ctx.Err() == nil:
			a.logger.WarnContext(ctx, "audit log trim: will try again", "err", err)
		case n > 0:
			a.logger.InfoContext(ctx, "audit log trimmed", "entries", n, "days", int(keep/(24*time.Hour)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
