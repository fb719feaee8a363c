package sqlite

// Aggregate click counts (clicks.Store): one row per counted link of a
// send, with its count. Nothing here names a reader.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tayori-news/tayori/clicks"
)

// Clicks keeps the counted links of sends in a database whose schema
// store.Migrate applied. It is safe for concurrent use.
type Clicks struct{ db *sql.DB }

// NewClicks returns the click counts' storage in db.
func NewClicks(db *sql.DB) *Clicks { return &Clicks{db: db} }

var _ clicks.Store = (*Clicks)(nil)

// AddLinks implements clicks.Store, in one transaction.
func (s *Clicks) AddLinks(ctx context.Context, links []clicks.Link) error {
	if len(links) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("clicks: add links: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO click_links
		(send_id, seq, list, section, section_title, item, link, headline, url)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (send_id, seq) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("clicks: add links: %w", err)
	}
	defer stmt.Close()
	for _, l := range links {
		if _, err := stmt.ExecContext(ctx, l.SendID, l.Seq, l.List, l.Section, l.SectionTitle, l.Item, l.Link, l.Headline, l.URL); err != nil {
			return fmt.Errorf("clicks: add link %d of send %d: %w", l.Seq, l.SendID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("clicks: add links: %w", err)
	}
	return nil
}

// Links implements clicks.Store.
func (s *Clicks) Links(ctx context.Context, sendID int64) ([]clicks.Link, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT send_id, seq, list, section, section_title, item, link, headline, url,
		clicks, first_day, last_day FROM click_links WHERE send_id = ? ORDER BY seq`, sendID)
	if err != nil {
		return nil, fmt.Errorf("clicks: links of send %d: %w", sendID, err)
	}
	defer rows.Close()
	var out []clicks.Link
	for rows.Next() {
		var l clicks.Link
		if err := rows.Scan(&l.SendID, &l.Seq, &l.List, &l.Section, &l.SectionTitle, &l.Item, &l.Link, &l.Headline, &l.URL,
			&l.Clicks, &l.FirstDay, &l.LastDay); err != nil {
			return nil, fmt.Errorf("clicks: links of send %d: %w", sendID, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clicks: links of send %d: %w", sendID, err)
	}
	return out, nil
}

// Click implements clicks.Store: one UPDATE.
func (s *Clicks) Click(ctx context.Context, r clicks.Ref, day string) (string, error) {
	var u string
	err := s.db.QueryRowContext(ctx, `UPDATE click_links SET clicks = clicks + 1, last_day = ?,
		first_day = CASE WHEN first_day = '' THEN ? ELSE first_day END
		WHERE send_id = ? AND seq = ? RETURNING url`, day, day, r.SendID, r.Seq).Scan(&u)
	if errors.Is(err, sql.ErrNoRows) {
		return "", clicks.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("clicks: count link %d of send %d: %w", r.Seq, r.SendID, err)
	}
	return u, nil
}
