package postgres

// The monthly rhythm's storage on PostgreSQL (rhythm.Store): one rule per list
// and the claims of what was done for each month. Times are Unix
// milliseconds.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tayori-news/tayori/rhythm"
)

// Rhythm keeps the rules and their runs in a PostgreSQL database whose schema
// store.Migrate applied. It is safe for concurrent use.
type Rhythm struct{ db *sql.DB }

// NewRhythm returns the rhythm's storage in db.
func NewRhythm(db *sql.DB) *Rhythm { return &Rhythm{db: db} }

var _ rhythm.Store = (*Rhythm)(nil)

// Rule implements rhythm.Store.
func (s *Rhythm) Rule(ctx context.Context, list string) (rhythm.Rule, bool, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT rule FROM rhythm_rules WHERE list = $1`, list).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return rhythm.Rule{}, false, nil
	}
	if err != nil {
		return rhythm.Rule{}, false, fmt.Errorf("rhythm: rule of %q: %w", list, err)
	}
	var r rhythm.Rule
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return rhythm.Rule{}, false, fmt.Errorf("rhythm: rule of %q: %w", list, err)
	}
	return r, true, nil
}

// Rules implements rhythm.Store.
func (s *Rhythm) Rules(ctx context.Context) ([]rhythm.Rule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT rule FROM rhythm_rules ORDER BY list`)
	if err != nil {
		return nil, fmt.Errorf("rhythm: rules: %w", err)
	}
	defer rows.Close()
	var out []rhythm.Rule
	for rows.Next() {
		var raw string
		var r rhythm.Rule
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("rhythm: rules: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("rhythm: rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SaveRule implements rhythm.Store.
func (s *Rhythm) SaveRule(ctx context.Context, r rhythm.Rule, by string, now time.Time) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("rhythm: save rule of %q: %w", r.List, err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO rhythm_rules (list, rule, updated_at, updated_by) VALUES ($1, $2::jsonb, $3, $4)
		ON CONFLICT (list) DO UPDATE SET rule = excluded.rule, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		r.List, string(b), now.UnixMilli(), by); err != nil {
		return fmt.Errorf("rhythm: save rule of %q: %w", r.List, err)
	}
	return nil
}

// Claim implements rhythm.Store: only the first call for a list, month
// and kind records it (the primary key decides, whatever the number of
// processes).
func (s *Rhythm) Claim(ctx context.Context, list, month, kind string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO rhythm_runs (list, month, kind, at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, list, month, kind, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("rhythm: claim %s of %s %s: %w", kind, list, month, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("rhythm: claim %s of %s %s: %w", kind, list, month, err)
	}
	return n == 1, nil
}

// Unclaim implements rhythm.Store.
func (s *Rhythm) Unclaim(ctx context.Context, list, month, kind string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM rhythm_runs WHERE list = $1 AND month = $2 AND kind = $3`, list, month, kind); err != nil {
		return fmt.Errorf("rhythm: unclaim %s of %s %s: %w", kind, list, month, err)
	}
	return nil
}
