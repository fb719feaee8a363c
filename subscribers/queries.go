package subscribers

import (
	"database/sql"
	"errors"
	"strings"
)

// All SQL of the package is here. It is written for SQLite but kept to
// what PostgreSQL also runs: '?' placeholders (rebind to $n), RETURNING,
// ON CONFLICT, bitwise '&'. The exceptions are marked: group_concat
// (string_agg in PostgreSQL).

// subscriberCols: a NULL public_id is derived from the id (publicIDs).
const subscriberCols = `SELECT s.id, COALESCE(s.public_id, ''), COALESCE(s.email, ''), s.name, s.status, s.regions, s.topics,
       s.confirm_seq, s.legal_hold, s.created_at, s.updated_at, COALESCE(s.erased_at, ''),
       COALESCE((SELECT group_concat(l.key) FROM memberships m JOIN lists l ON l.id = m.list_id
                 WHERE m.subscriber_id = s.id AND m.subscribed = 1), ''),
       COALESCE((SELECT group_concat(t.tag) FROM subscriber_tags t WHERE t.subscriber_id = s.id), '')
  FROM subscribers s`

const (
	qGetByID       = subscriberCols + ` WHERE s.id = ?`
	qGetByPublicID = subscriberCols + ` WHERE s.public_id = ?`
	// A derived public id names only a subscriber that stores none.
	qGetByDerivedID = subscriberCols + ` WHERE s.id = ? AND s.public_id IS NULL`
	qGetByEmail     = subscriberCols + ` WHERE s.email_key = ?`
	// qGetMany is completed with "(?, ?, …)".
	qGetMany = subscriberCols + ` WHERE s.id IN `
	// qListPage is completed by listPageQuery.
	qListPage = subscriberCols

	qInsertSubscriber = `INSERT INTO subscribers
       (email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	// The import's set-based inserts take an array of rows in SQLite's
	// binary JSON, built in Go (see Store.bulkInsert and internal/jsonb);
	// PostgreSQL would take the same rows as JSON text and use
	// jsonb_array_elements with the same shape.
	qInsertSubscribersJSON = `INSERT INTO subscribers
       (id, email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, ?2, ?2, ?2
         FROM jsonb_each(?1)`
	// The history entries and memberships of an import's new subscribers
	// are read back from their rows, by the batch's range of ids, rather
	// than parsed from JSON again.
	qInsertHistoryRange = `INSERT INTO status_history (subscriber_id, at, from_status, to_status, list, cause)
       SELECT id, ?3, '', status, '', ?4 FROM subscribers WHERE id BETWEEN ?1 AND ?2`
	qJoinListRange = `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at)
       SELECT ?1, id, 1, ?4, ?4 FROM subscribers
        WHERE id BETWEEN ?2 AND ?3 AND status NOT IN ('unsubscribed', 'complained') ON CONFLICT DO NOTHING`
	// The rows of one statement share method, form version and text hash
	// (a file usually has one of each), bound once instead of repeated in
	// every row's JSON.
	qInsertConsentsJSON = `INSERT INTO consents
       (subscriber_id, consented_at, method, form_version, text_sha256, ip, user_agent, lists, prefs, recorded_at)
       SELECT value ->> 0, value ->> 1, ?4, ?5, ?6, value ->> 2, value ->> 3, ?2, value ->> 4, ?3
         FROM jsonb_each(?1)`
	qSetStatus       = `UPDATE subscribers SET status = ?, status_at = ?, updated_at = ? WHERE id = ?`
	qSetName         = `UPDATE subscribers SET name = ?, updated_at = ? WHERE id = ?`
	qSetPrefs        = `UPDATE subscribers SET regions = ?, topics = ?, updated_at = ? WHERE id = ?`
	qAdvanceConfirm  = `UPDATE subscribers SET confirm_seq = confirm_seq + 1, updated_at = ? WHERE id = ?`
	qSetLegalHold    = `UPDATE subscribers SET legal_hold = ?, updated_at = ? WHERE id = ?`
	qTouch           = `UPDATE subscribers SET updated_at = ? WHERE id = ?`
	qDeleteTags      = `DELETE FROM subscriber_tags WHERE subscriber_id = ?`
	qInsertTag       = `INSERT INTO subscriber_tags (subscriber_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING`
	qTagsInRange     = `SELECT subscriber_id, tag FROM subscriber_tags WHERE subscriber_id BETWEEN ? AND ? ORDER BY subscriber_id, tag`
	qEraseSubscriber = `UPDATE subscribers SET email = NULL, email_key = NULL, name = '', pending_choice = '', status = ?, regions = 0, topics = 0,
       legal_hold = 0, updated_at = ?, status_at = ?, erased_at = ? WHERE id = ?`
	qScrubHistory = `UPDATE status_history SET cause = '' WHERE subscriber_id = ?`

	qListIDByKey   = `SELECT id FROM lists WHERE key = ?`
	qInsertList    = `INSERT INTO lists (key, name, created_at) VALUES (?, ?, ?) RETURNING id`
	qListsWithSize = `SELECT l.id, l.key, l.name, l.created_at,
       COALESCE(SUM(CASE WHEN m.subscribed = 1 AND s.status = 'active' THEN 1 ELSE 0 END), 0),
       COUNT(m.subscriber_id)
  FROM lists l
  LEFT JOIN memberships m ON m.list_id = l.id
  LEFT JOIN subscribers s ON s.id = m.subscriber_id
 GROUP BY l.id, l.key, l.name, l.created_at
 ORDER BY l.key`

	qJoinList = `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at)
       VALUES (?, ?, 1, ?, ?)
       ON CONFLICT (list_id, subscriber_id) DO UPDATE SET subscribed = 1, updated_at = excluded.updated_at
       WHERE memberships.subscribed = 0`
	qJoinListIfNew = `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at)
       VALUES (?, ?, 1, ?, ?) ON CONFLICT DO NOTHING`
	qMembership  = `SELECT subscribed FROM memberships WHERE list_id = ? AND subscriber_id = ?`
	qLeaveList   = `UPDATE memberships SET subscribed = 0, updated_at = ? WHERE list_id = ? AND subscriber_id = ? AND subscribed = 1`
	qLeaveAll    = `UPDATE memberships SET subscribed = 0, updated_at = ? WHERE subscriber_id = ? AND subscribed = 1`
	qCountMember = `SELECT COUNT(*) FROM memberships WHERE subscriber_id = ? AND subscribed = 1`
	qDeleteMembs = `DELETE FROM memberships WHERE subscriber_id = ?`

	qInsertConsent = `INSERT INTO consents
       (subscriber_id, consented_at, method, form_version, text_sha256, ip, user_agent, lists, prefs, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qConsentExists = `SELECT 1 FROM consents WHERE subscriber_id = ? AND consented_at = ? AND method = ?
       AND form_version = ? AND text_sha256 = ? LIMIT 1`
	qConsents = `SELECT id, consented_at, method, form_version, text_sha256, ip, user_agent, lists, prefs, recorded_at
  FROM consents WHERE subscriber_id = ? ORDER BY consented_at, id`
	qDeleteConsents = `DELETE FROM consents WHERE subscriber_id = ?`
	qPurgeConsents  = `DELETE FROM consents WHERE subscriber_id IN (
       SELECT id FROM subscribers
        WHERE status IN ('unsubscribed', 'bounced', 'complained') AND legal_hold = 0 AND status_at < ?)`

	// qLatestConsentsAmong is completed with "(?, ?, …)" and an ORDER BY.
	qLatestConsentsAmong = `SELECT subscriber_id, consented_at, method, form_version, text_sha256, ip, user_agent
  FROM consents WHERE subscriber_id IN `

	qPurgePending = `DELETE FROM subscribers WHERE status = 'pending' AND created_at < ? AND legal_hold = 0
       AND NOT EXISTS (SELECT 1 FROM consents c WHERE c.subscriber_id = subscribers.id)`

	qInsertHistory = `INSERT INTO status_history (subscriber_id, at, from_status, to_status, list, cause) VALUES (?, ?, ?, ?, ?, ?)`
	qHistory       = `SELECT at, from_status, to_status, list, cause FROM status_history WHERE subscriber_id = ? ORDER BY at, id`

	qSuppressionExists = `SELECT 1 FROM suppressions WHERE hash = ?`
	qSuppressionInsert = `INSERT INTO suppressions (hash, key_id, reason, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`
	qSuppressionDelete = `DELETE FROM suppressions WHERE hash = ?`
	qSuppressionUnder  = `SELECT reason, created_at FROM suppressions WHERE hash = ? AND key_id = ?`
	qSuppressionKeys   = `SELECT key_id, count(*) FROM suppressions GROUP BY key_id`
	// qSuppressedReaders are the readers whose suppression entries can be
	// re-keyed: their address is still stored.
	qSuppressedReaders = `SELECT email FROM subscribers WHERE email IS NOT NULL AND status IN ('bounced', 'complained')`
	// qSuppressedAmong is completed with "(?, ?, …)".
	qSuppressedAmong   = `SELECT hash FROM suppressions WHERE hash IN `
	qCountSuppressions = `SELECT count(*) FROM suppressions`
	qAllSuppressions   = `SELECT hash FROM suppressions`

	// qExistingAmong: ?2 is a JSONB array of address keys (import). A
	// PostgreSQL store would bind an array: email_key = ANY($2).
	qExistingAmong = `SELECT s.id, s.email_key, s.name, s.status, s.regions, s.topics,
       COALESCE((SELECT group_concat(t.tag) FROM subscriber_tags t WHERE t.subscriber_id = s.id), ''),
       COALESCE((SELECT m.subscribed FROM memberships m WHERE m.subscriber_id = s.id AND m.list_id = ?1), -1)
  FROM subscribers s WHERE s.email_key IN (SELECT value FROM json_each(?2))`
)

// recipientsQuery is the delivery hot path: active members of a list after
// a given id, optionally filtered by preferences. It walks the memberships
// primary key (list_id, subscriber_id) in order and looks each subscriber
// up by its primary key, so every batch costs O(batch) whatever the size
// of the list.
func recipientsQuery(upTo, byRegion, byTopic bool, customTags int) string {
	var b strings.Builder
	b.WriteString(`SELECT s.id, COALESCE(s.public_id, ''), s.email, s.name, s.regions, s.topics
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
			b.WriteString(placeholders(customTags))
			b.WriteString(`)`)
		}
		b.WriteString(`)`)
	}
	b.WriteString(` ORDER BY m.subscriber_id LIMIT ?`)
	return b.String()
}

// placeholders returns "(?, ?, …)" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return "(NULL)"
	}
	return "(" + strings.Repeat("?, ", n-1) + "?)"
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Migration 5: the choice a returning reader made on the signup form,
// applied when they confirm, and a list's setting for readers with
// nothing this month.
const (
	qSetPendingChoice    = `UPDATE subscribers SET pending_choice = ?, updated_at = ? WHERE id = ?`
	qGetPendingChoice    = `SELECT pending_choice FROM subscribers WHERE id = ?`
	qListSkipsNothing    = `SELECT skip_nothing FROM lists WHERE key = ?`
	qSetListSkipsNothing = `UPDATE lists SET skip_nothing = ? WHERE key = ?`
)
