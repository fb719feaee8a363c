package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/tayori-news/tayori/subscribers"
)

// subRecipientsQuery is the delivery hot path: active members of a list
// after a given id, optionally filtered by preferences. It walks the
// memberships primary key (list_id, subscriber_id) in order and looks each
// subscriber up by its primary key, so every batch costs O(batch) whatever
// the size of the list (TestSubscribersRecipientsPlan).
func subRecipientsQuery(upTo, byRegion, byTopic bool, customTags int) string {
	var b strings.Builder
	b.WriteString(`SELECT s.id, s.email, s.name, s.regions, s.topics
  FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
 WHERE m.list_id = ? AND m.subscriber_id > ? AND m.subscribed = 1 AND s.status = 'active'`)
	if upTo {
		b.WriteString(` AND m.subscriber_id <= ?`)
	}
	if byRegion {
		b.WriteString(` AND (s.regions & ?) <> 0`)
	}
	if byTopic {
		b.WriteString(` AND ((s.topics & ?) <> 0`)
		if customTags > 0 {
			b.WriteString(` OR EXISTS (SELECT 1 FROM subscriber_tags t WHERE t.subscriber_id = s.id AND t.tag IN `)
			b.WriteString(subPlaceholders(customTags))
			b.WriteString(`)`)
		}
		b.WriteString(`)`)
	}
	b.WriteString(` ORDER BY m.subscriber_id LIMIT ?`)
	return b.String()
}

// subPager pages through a recipient scan with one prepared statement.
type subPager struct {
	db   *sql.DB
	stmt *sql.Stmt
	args []any // args[1] is the id to start after
}

// Recipients implements subscribers.Storage.
func (s *Subscribers) Recipients(ctx context.Context, q subscribers.RecipientScan) (subscribers.RecipientPager, error) {
	query := subRecipientsQuery(q.UpToID > 0, q.ByRegion, q.ByTopic, len(q.Custom))
	args := []any{q.ListID, int64(0)}
	if q.UpToID > 0 {
		args = append(args, q.UpToID)
	}
	if q.ByRegion {
		args = append(args, q.Regions)
	}
	if q.ByTopic {
		args = append(args, q.Topics)
		for _, c := range q.Custom {
			args = append(args, c)
		}
	}
	args = append(args, q.Limit)
	stmt, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &subPager{db: s.db, stmt: stmt, args: args}, nil
}

func (p *subPager) Close() error { return p.stmt.Close() }

// Page implements subscribers.RecipientPager.
func (p *subPager) Page(ctx context.Context, after int64, out []subscribers.RecipientRow) ([]subscribers.RecipientRow, error) {
	out = out[:0]
	p.args[1] = after
	rows, err := p.stmt.QueryContext(ctx, p.args...)
	if err != nil {
		return out, err
	}
	for rows.Next() {
		var r subscribers.RecipientRow
		if err := rows.Scan(&r.ID, &r.Email, &r.Name, &r.Regions, &r.Topics); err != nil {
			rows.Close()
			return out, err
		}
		out = append(out, r)
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(out) == 0 {
		return out, err
	}
	return out, subAddTags(ctx, p.db, out)
}

// subAddTags fills in the custom topic tags of a page with one range query.
func subAddTags(ctx context.Context, db *sql.DB, page []subscribers.RecipientRow) error {
	rows, err := db.QueryContext(ctx, `SELECT subscriber_id, tag FROM subscriber_tags WHERE subscriber_id BETWEEN ? AND ? ORDER BY subscriber_id, tag`,
		page[0].ID, page[len(page)-1].ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var id int64
		var tag string
		if err := rows.Scan(&id, &tag); err != nil {
			return err
		}
		for i < len(page) && page[i].ID < id {
			i++
		}
		if i == len(page) {
			break
		}
		if page[i].ID == id {
			page[i].Tags = append(page[i].Tags, tag)
		}
	}
	return rows.Err()
}
