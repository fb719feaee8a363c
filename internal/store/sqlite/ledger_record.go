package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"sync"
	"time"

	"github.com/tayori-news/tayori/internal/jsonw"
	"github.com/tayori-news/tayori/queue"
)

// ledgerQRecord writes a group of outcomes in one statement: the group
// goes to SQLite as a JSON array of [send_id, subscriber_id, status,
// permanent, reply, claim] and each row is updated only if it is
// unfinished (or was cancelled while its copy was in flight) and its
// batch's claim is still the one the outcome was made under.
const ledgerQRecord = `UPDATE deliveries
   SET status = j.value ->> 2, permanent = j.value ->> 3, reply = j.value ->> 4,
       attempts = attempts + 1, updated_at = ?2
  FROM jsonb_each(?1) AS j
 WHERE deliveries.send_id = j.value ->> 0 AND deliveries.subscriber_id = j.value ->> 1
   AND deliveries.status IN ('queued','retry','sending','cancelled')
   AND EXISTS (SELECT 1 FROM batch_claims b
                WHERE b.send_id = deliveries.send_id AND b.batch = deliveries.batch AND b.claim = j.value ->> 5)`

// ledgerQRecordSent appends the group's first copies that were sent, one
// batch_sent row per batch: ?1 is a JSON array of [send_id, batch, claim,
// n, [[subscriber_id, reply], ...]], and a batch's row goes in only while
// the claim its copies were sent under stands.
const ledgerQRecordSent = `INSERT INTO batch_sent (send_id, batch, n, at, sent)
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 3, ?2, j.value -> 4
  FROM json_each(?1) AS j
 WHERE EXISTS (SELECT 1 FROM batch_claims b
                WHERE b.send_id = j.value ->> 0 AND b.batch = j.value ->> 1 AND b.claim = j.value ->> 2)`

// ledgerRecordStmts are Record's statements, prepared when first needed:
// an UPDATE … FROM costs more to prepare than to run for a small group.
type ledgerRecordStmts struct {
	mu         sync.Mutex
	rows, sent *sql.Stmt
}

func (p *ledgerRecordStmts) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range []*sql.Stmt{p.rows, p.sent} {
		if st != nil {
			st.Close()
		}
	}
	p.rows, p.sent = nil, nil
	return nil
}

// Record commits a group of outcomes: both statements in one transaction
// when there are both, else the one alone (a statement is atomic).
func (l *Ledger) Record(ctx context.Context, group []queue.Outcome, now time.Time) error {
	rows, sent := ledgerEncodeRows(group), ledgerEncodeSent(group)
	var tx *sql.Tx // with both statements to run: both or neither
	if rows != "" && sent != "" {
		var err error
		if tx, err = l.db.BeginTx(ctx, nil); err != nil {
			return ledgerErr(err)
		}
		defer tx.Rollback()
	}
	ms := now.UnixMilli()
	if err := l.recordExec(ctx, tx, &l.rec.rows, ledgerQRecord, rows, ms); err != nil {
		return ledgerErr(err)
	}
	if err := l.recordExec(ctx, tx, &l.rec.sent, ledgerQRecordSent, sent, ms); err != nil {
		return ledgerErr(err)
	}
	if tx != nil {
		return ledgerErr(tx.Commit())
	}
	return nil
}

// recordExec runs q with arg and now, in tx if there is one; an empty arg
// runs nothing. q is prepared once, into *st.
func (l *Ledger) recordExec(ctx context.Context, tx *sql.Tx, st **sql.Stmt, q, arg string, now int64) error {
	if arg == "" {
		return nil
	}
	l.rec.mu.Lock()
	if *st == nil {
		p, err := l.db.PrepareContext(ctx, q)
		if err != nil {
			l.rec.mu.Unlock()
			return err
		}
		*st = p
	}
	stmt := *st
	l.rec.mu.Unlock()
	if tx != nil {
		stmt = tx.StmtContext(ctx, stmt)
	}
	_, err := stmt.ExecContext(ctx, arg, now)
	return err
}

// ledgerEncodeRows is ledgerQRecord's argument for the outcomes that
// update their rows, "" if there are none.
func ledgerEncodeRows(batch []queue.Outcome) string {
	var buf []byte
	for i := range batch {
		o := &batch[i]
		if o.Appended() {
			continue
		}
		if buf == nil {
			buf = make([]byte, 0, 64+len(batch)*96)
			buf = append(buf, '[')
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, o.SendID, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, o.SubscriberID, 10)
		buf = append(buf, ',')
		buf = jsonw.AppendString(buf, o.Status)
		if o.Permanent {
			buf = append(buf, ",1,"...)
		} else {
			buf = append(buf, ",0,"...)
		}
		buf = jsonw.AppendString(buf, o.Reply)
		buf = append(buf, ',')
		buf = jsonw.AppendString(buf, o.Claim)
		buf = append(buf, ']')
	}
	if buf == nil {
		return ""
	}
	return string(append(buf, ']'))
}

// ledgerSentRun is one batch run's first copies sent, in a group.
type ledgerSentRun struct {
	sendID, batch int64
	claim         string
}

// ledgerGroupSent groups the first copies sent by batch run, in order of
// first appearance.
func ledgerGroupSent(batch []queue.Outcome) ([]ledgerSentRun, map[ledgerSentRun][]*queue.Outcome) {
	var (
		order []ledgerSentRun
		byRun map[ledgerSentRun][]*queue.Outcome
	)
	for i := range batch {
		o := &batch[i]
		if !o.Appended() {
			continue
		}
		k := ledgerSentRun{o.SendID, o.Batch, o.Claim}
		if byRun == nil {
			byRun = map[ledgerSentRun][]*queue.Outcome{}
		}
		if _, ok := byRun[k]; !ok {
			order = append(order, k)
		}
		byRun[k] = append(byRun[k], o)
	}
	return order, byRun
}

// ledgerEncodeSent is ledgerQRecordSent's argument: the first copies
// sent, grouped by batch run in order of first appearance; "" if there
// are none.
func ledgerEncodeSent(batch []queue.Outcome) string {
	order, byRun := ledgerGroupSent(batch)
	if len(order) == 0 {
		return ""
	}
	buf := make([]byte, 0, 64*len(order)+len(batch)*64)
	buf = append(buf, '[')
	for i, k := range order {
		if i > 0 {
			buf = append(buf, ',')
		}
		os := byRun[k]
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, k.sendID, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, k.batch, 10)
		buf = append(buf, ',')
		buf = jsonw.AppendString(buf, k.claim)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(len(os)), 10)
		buf = append(buf, ",["...)
		for j, o := range os {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = strconv.AppendInt(buf, o.SubscriberID, 10)
			buf = append(buf, ',')
			buf = jsonw.AppendString(buf, o.Reply)
			buf = append(buf, ']')
		}
		buf = append(buf, "]]"...)
	}
	return string(append(buf, ']'))
}
