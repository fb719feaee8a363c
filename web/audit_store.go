package web

import (
	"context"
	"fmt"
	"iter"
	"time"
	"unicode/utf8"
)

// The audit log and the store's readiness check; the rows are kept by the
// Storage (table web_audit of internal/store/schema's 00002_web.sql).

// AuditEntry is one editor action in the audit log.
type AuditEntry struct {
	ID      int64
	At      time.Time
	Editor  string // the editor's name; "" for a failed sign-in naming no editor
	Action  string // signin, signin_failed, upload, save, test_send, send, pause, resume, cancel, export, erase, unsubscribe, import, task_retry, task_archive, task_delete
	Subject string // the title, the list, the address…
	Detail  string // counts and the like
}

// maxAuditField bounds each text field of an entry, in bytes.
const maxAuditField = 1000

func clipAudit(s string) string {
	if len(s) <= maxAuditField {
		return s
	}
	s = s[:maxAuditField]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// Audit records e (its ID and, when zero, its time are set here).
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.Editor, e.Subject, e.Detail = clipAudit(e.Editor), clipAudit(e.Subject), clipAudit(e.Detail)
	if err := s.st.InsertAudit(ctx, e); err != nil {
		return fmt.Errorf("web: record %s in the audit log: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns up to limit entries older than beforeID (0: the
// newest), newest first.
func (s *Store) AuditLog(ctx context.Context, beforeID int64, limit int) ([]AuditEntry, error) {
	out, err := s.st.AuditLog(ctx, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("web: read the audit log: %w", err)
	}
	return out, nil
}

// DefaultAuditKeep is how long the audit log keeps an entry when
// TrimAudit is given no duration: 400 days, so that a review held once
// a year still finds every entry of the year it looks back on, with a
// month to spare for holding it late.
const DefaultAuditKeep = 400 * 24 * time.Hour

// TrimAudit deletes the entries of the audit log recorded more than keep
// ago by the Store's clock (DefaultAuditKeep when keep ≤ 0) and returns
// how many went. The workers call it (TAYORI_AUDIT_DAYS); it is
// idempotent, so several may.
func (s *Store) TrimAudit(ctx context.Context, keep time.Duration) (int64, error) {
	if keep <= 0 {
		keep = DefaultAuditKeep
	}
	n, err := s.st.TrimAudit(ctx, s.now().Add(-keep))
	if err != nil {
		return n, fmt.Errorf("web: trim the audit log: %w", err)
	}
	return n, nil
}

// auditPage is how many entries AllAudit reads at a time.
const auditPage = 500

// AllAudit yields every entry of the audit log, newest first, a page at
// a time (the CSV export).
func (s *Store) AllAudit(ctx context.Context) iter.Seq2[AuditEntry, error] {
	return func(yield func(AuditEntry, error) bool) {
		var before int64
		for {
			page, err := s.AuditLog(ctx, before, auditPage)
			if err != nil {
				yield(AuditEntry{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < auditPage {
				return
			}
			before = page[len(page)-1].ID
		}
	}
}

// Ping checks that the store answers a query, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.st.Ping(ctx); err != nil {
		return fmt.Errorf("web: store: %w", err)
	}
	return nil
}
