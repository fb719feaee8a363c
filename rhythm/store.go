package rhythm

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// This file holds all the SQL of the monthly rhythm (SQLite), used through
// the Store interface (runner.go).

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable is the goose version table of the rhythm's migrations.
const VersionTable = "rhythm_migrations"

// SQLStore is the Store on SQLite.
type SQLStore struct{ db *sql.DB }

// OpenSQLStore applies the migrations to db and returns the store.
func OpenSQLStore(ctx context.Context, db *sql.DB) (*SQLStore, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := sqlitedb.Migrate(ctx, db, sub, VersionTable); err != nil {
		return nil, fmt.Errorf("rhythm: %w", err)
	}
	return &SQLStore{db: db}, nil
}

// Rule returns list's rule, or ok false.
func (s *SQLStore) Rule(ctx context.Context, list string) (Rule, bool, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT rule FROM rhythm_rules WHERE list = ?`, list).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return Rule{}, false, nil
	}
	if err != nil {
		return Rule{}, false, fmt.Errorf("rhythm: rule of %q: %w", list, err)
	}
	var r Rule
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return Rule{}, false, fmt.Errorf("rhythm: rule of %q: %w", list, err)
	}
	return r, true, nil
}

// Rules returns every rule.
func (s *SQLStore) Rules(ctx context.Context) ([]Rule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT rule FROM rhythm_rules ORDER BY list`)
	if err != nil {
		return nil, fmt.Errorf("rhythm: rules: %w", err)
	}
	defer rows.Close()
	var out []Rule
	for rows.Next() {
		var raw string
		var r Rule
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

// SaveRule stores r, replacing its list's rule.
func (s *SQLStore) SaveRule(ctx context.Context, r Rule, by string, now time.Time) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO rhythm_rules (list, rule, updated_at, updated_by) VALUES (?, ?, ?, ?)
		ON CONFLICT (list) DO UPDATE SET rule = excluded.rule, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		r.List, string(b), now.UnixMilli(), by); err != nil {
		return fmt.Errorf("rhythm: save rule of %q: %w", r.List, err)
	}
	return nil
}

// Claim records that kind was done for list's month and reports whether
// this call recorded it (false: done already).
func (s *SQLStore) Claim(ctx context.Context, list, month, kind string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO rhythm_runs (list, month, kind, at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, list, month, kind, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("rhythm: claim %s of %s %s: %w", kind, list, month, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Unclaim forgets a claim whose work failed, so that the next tick tries
// again.
func (s *SQLStore) Unclaim(ctx context.Context, list, month, kind string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM rhythm_runs WHERE list = ? AND month = ? AND kind = ?`, list, month, kind); err != nil {
		return fmt.Errorf("rhythm: unclaim %s of %s %s: %w", kind, list, month, err)
	}
	return nil
}
