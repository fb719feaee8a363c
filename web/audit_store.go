package web

import (
	"context"
	"fmt"
	"iter"
	"time"
	"unicode/utf8"
)

// This file holds every SQL statement of the audit log (table web_audit,
// migration 0003) and of the store's readiness check.

// AuditEntry is one editor action in the audit log.
type AuditEntry struct {
	ID      int64
	At      time.Time
	Editor  string // the editor's name (as typed, for a failed sign-in)
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
	_, err := s.db.ExecContext(ctx, `INSERT INTO web_audit (at, editor, action, subject, detail) VALUES (?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), clipAudit(e.Editor), e.Action, clipAudit(e.Subject), clipAudit(e.Detail))
	if err != nil {
		return fmt.Errorf("web: record %s in the audit log: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns up to limit entries older than beforeID (0: the
// newest), newest first.
func (s *Store) AuditLog(ctx context.Context, beforeID int64, limit int) ([]AuditEntry, error) {
	q := `SELECT id, at, editor, action, subject, detail FROM web_audit`
	args := []any{}
	if beforeID > 0 {
		q += ` WHERE id < ?`
		args = append(args, beforeID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("web: read the audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Editor, &e.Action, &e.Subject, &e.Detail); err != nil {
			return nil, fmt.Errorf("web: read the audit log: %w", err)
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("web: read the audit log: %w", err)
	}
	return out, nil
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
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM web_editors WHERE id = 0`).Scan(&n)
	if err != nil {
		return fmt.Errorf("web: store: %w", err)
	}
	return nil
}
