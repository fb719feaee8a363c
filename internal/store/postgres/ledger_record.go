package postgres

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/tayori-news/tayori/internal/jsonw"
	"github.com/tayori-news/tayori/queue"
)

// ledgerQRecord updates the rows of a group's outcomes, given as arrays:
// each row only if it is unfinished (or was cancelled while its copy was
// in flight) and its batch's claim is the one the outcome was made under.
const ledgerQRecord = `UPDATE deliveries d
   SET status = o.status, permanent = o.permanent, reply = o.reply, attempts = d.attempts + 1, updated_at = $7
  FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[])
       AS o(send_id, subscriber_id, status, permanent, reply, claim)
 WHERE d.send_id = o.send_id AND d.subscriber_id = o.subscriber_id
   AND d.status IN ('queued','retry','sending','cancelled')
   AND EXISTS (SELECT 1 FROM batch_claims b WHERE b.send_id = d.send_id AND b.batch = d.batch AND b.claim = o.claim)`

// ledgerQRecordSent appends one batch_sent row per batch run while its
// claim stands.
const ledgerQRecordSent = `INSERT INTO batch_sent (send_id, batch, n, at, sent)
SELECT r.send_id, r.batch, r.n, $6, r.sent::jsonb
  FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::text[]) AS r(send_id, batch, claim, n, sent)
 WHERE EXISTS (SELECT 1 FROM batch_claims b WHERE b.send_id = r.send_id AND b.batch = r.batch AND b.claim = r.claim)`

// Record commits a group in one transaction, sent in one round trip. It
// first locks the claims the outcomes were made under (shared: a takeover
// waits for the commit, and a commit after a takeover finds the new
// claim) and the counts of the group's sends (so that a cancel and a
// commit of copies take turns).
func (l *Ledger) Record(ctx context.Context, group []queue.Outcome, now time.Time) error {
	var (
		sendIDs, batches []int64
		seen             = map[[2]int64]bool{}
	)
	for i := range group {
		k := [2]int64{group[i].SendID, group[i].Batch}
		if !seen[k] {
			seen[k] = true
			sendIDs, batches = append(sendIDs, k[0]), append(batches, k[1])
		}
	}
	sends := slices.Compact(slices.Sorted(slices.Values(slices.Clone(sendIDs))))
	var q pgx.Batch
	q.Queue(`SELECT 1 FROM batch_claims b
		JOIN unnest($1::bigint[], $2::bigint[]) AS k(send_id, batch) ON b.send_id = k.send_id AND b.batch = k.batch
		ORDER BY b.send_id, b.batch FOR SHARE OF b`, sendIDs, batches)
	q.Queue(`SELECT 1 FROM send_counts WHERE send_id = ANY($1) ORDER BY send_id FOR NO KEY UPDATE`, sends)
	ms := now.UnixMilli()
	var (
		rs, rsub      []int64
		rst, rrep, rc []string
		rperm         []int32
	)
	for i := range group {
		o := &group[i]
		if o.Appended() {
			continue
		}
		rs, rsub, rst, rrep, rc = append(rs, o.SendID), append(rsub, o.SubscriberID), append(rst, o.Status),
			append(rrep, ledgerText(o.Reply)), append(rc, o.Claim)
		rperm = append(rperm, int32(ledgerBool(o.Permanent)))
	}
	if len(rs) > 0 {
		q.Queue(ledgerQRecord, rs, rsub, rst, rperm, rrep, rc, ms)
	}
	if s, b, c, n, j := ledgerSentRuns(group); len(s) > 0 {
		q.Queue(ledgerQRecordSent, s, b, c, n, j, ms)
	}
	return l.withConn(ctx, func(c *pgx.Conn) error {
		return ledgerErr(c.SendBatch(ctx, &q).Close())
	})
}

// ledgerText makes s valid UTF-8 without NUL (which PostgreSQL text
// refuses), as SQLite's JSON functions do: invalid bytes become U+FFFD.
func ledgerText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		if r == 0 {
			r = utf8.RuneError
		}
		b.WriteRune(r) // RuneError for a bad sequence
	}
	return b.String()
}

// ledgerSentRuns groups the first copies sent by batch run, in order of
// first appearance: the arrays of ledgerQRecordSent.
func ledgerSentRuns(group []queue.Outcome) (sends, batches []int64, claims []string, ns []int32, sent []string) {
	type run struct {
		sendID, batch int64
		claim         string
	}
	var (
		order []run
		byRun map[run][]*queue.Outcome
	)
	for i := range group {
		o := &group[i]
		if !o.Appended() {
			continue
		}
		k := run{o.SendID, o.Batch, o.Claim}
		if byRun == nil {
			byRun = map[run][]*queue.Outcome{}
		}
		if _, ok := byRun[k]; !ok {
			order = append(order, k)
		}
		byRun[k] = append(byRun[k], o)
	}
	for _, k := range order {
		os := byRun[k]
		buf := make([]byte, 0, 2+len(os)*64)
		buf = append(buf, '[')
		for j, o := range os {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = strconv.AppendInt(buf, o.SubscriberID, 10)
			buf = append(buf, ',')
			buf = jsonw.AppendString(buf, ledgerText(o.Reply))
			buf = append(buf, ']')
		}
		buf = append(buf, ']')
		sends, batches, claims = append(sends, k.sendID), append(batches, k.batch), append(claims, k.claim)
		ns, sent = append(ns, int32(len(os))), append(sent, string(buf))
	}
	return
}
