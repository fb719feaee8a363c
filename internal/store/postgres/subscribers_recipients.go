package postgres

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/tayori-news/tayori/subscribers"
)

// subRecipientsQuery is the delivery hot path: active members of a list
// after a given id, optionally filtered by preferences, walking the
// memberships primary key (list_id, subscriber_id) in order. The bounds
// are given on s.id as well: PostgreSQL does not carry a range across the
// join's equality, and a merge join then scanned subscribers from the
// first id on every page (planning 100,000 readers read 2 million rows).
func subRecipientsQuery(upTo, byRegion, byTopic, custom bool) string {
	var b strings.Builder
	n := 2
	next := func() string { n++; return "$" + strconv.Itoa(n) }
	b.WriteString(`SELECT s.id, s.email, s.name, s.regions, s.topics
  FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
 WHERE m.list_id = $1 AND m.subscriber_id > $2 AND s.id > $2 AND m.subscribed = 1 AND s.status = 'active'`)
	if upTo {
		n := next()
		b.WriteString(` AND m.subscriber_id <= ` + n + ` AND s.id <= ` + n)
	}
	if byRegion {
		b.WriteString(` AND (s.regions & ` + next() + `) <> 0`)
	}
	if byTopic {
		b.WriteString(` AND ((s.topics & ` + next() + `) <> 0`)
		if custom {
			b.WriteString(` OR EXISTS (SELECT 1 FROM subscriber_tags t WHERE t.subscriber_id = s.id AND t.tag = ANY(` + next() + `))`)
		}
		b.WriteString(`)`)
	}
	b.WriteString(` ORDER BY m.subscriber_id LIMIT ` + next())
	return b.String()
}

// subPager pages through a recipient scan. Its query is not prepared
// here: the pgx driver keeps each connection's statements by text, so a
// page is one round trip, where Prepare and Close on every scan (one per
// batch at delivery time) cost two more and a parse.
type subPager struct {
	db    *sql.DB
	query string
	args  []any // args[1] is the id to start after
}

// Recipients implements subscribers.Storage.
func (s *Subscribers) Recipients(ctx context.Context, q subscribers.RecipientScan) (subscribers.RecipientPager, error) {
	query := subRecipientsQuery(q.UpToID > 0, q.ByRegion, q.ByTopic, len(q.Custom) > 0)
	args := []any{q.ListID, int64(0)}
	if q.UpToID > 0 {
		args = append(args, q.UpToID)
	}
	if q.ByRegion {
		args = append(args, q.Regions)
	}
	if q.ByTopic {
		args = append(args, q.Topics)
		if len(q.Custom) > 0 {
			args = append(args, q.Custom)
		}
	}
	args = append(args, q.Limit)
	return &subPager{db: s.db, query: query, args: args}, nil
}

func (p *subPager) Close() error { return nil }

// Page implements subscribers.RecipientPager.
func (p *subPager) Page(ctx context.Context, after int64, out []subscribers.RecipientRow) ([]subscribers.RecipientRow, error) {
	out = out[:0]
	p.args[1] = after
	rows, err := p.db.QueryContext(ctx, p.query, p.args...)
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
	rows, err := db.QueryContext(ctx, `SELECT subscriber_id, tag FROM subscriber_tags WHERE subscriber_id BETWEEN $1 AND $2 ORDER BY subscriber_id, tag COLLATE "C"`,
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
