// Package subscribers keeps Tayori's readers: their addresses, the lists
// they belong to, the regions and topics they chose, consent records, a
// history of status changes, and a suppression list of keyed address
// hashes. It also mints and checks the signed links in every mail (through
// package token) and imports and exports CSV.
//
// The Store keeps its data in a Storage, the interface in storage.go that
// this package defines: every read and write in the store's own terms, no
// SQL. Package internal/store/sqlite implements it on SQLite (the
// embedded default) and internal/store/postgres on PostgreSQL;
// store.Subscribers picks one for the database TAYORI_DB names, and
// store.Migrate applies the schema (internal/store/schema, 00001_subscribers.sql)
// before Open, which does not migrate. The rules stay here: statuses and
// their transitions, validation, tokens, suppression hashes, what an
// import may change. Other packages declare the small interfaces they
// need over *Store, for example:
//
//	type recipientSource interface {
//		Recipients(ctx context.Context, q subscribers.RecipientQuery) iter.Seq2[subscribers.Recipient, error]
//		GetMany(ctx context.Context, ids []int64) (map[int64]subscribers.Subscriber, error)
//		MarkBounced(ctx context.Context, id int64, cause string) error
//		UnsubscribeToken(publicID, list string) (string, error)
//	}
//
// # Lifecycle
//
// A web signup (Add with Method DoubleOptIn) creates a pending subscriber;
// Confirm with the token from ConfirmToken makes them active and stores
// the consent record. An import or API add with a recorded consent is
// active at once. Unsubscribe (one list or all) is idempotent. MarkBounced
// and MarkComplained suppress the address; Erase removes personal data and
// keeps only the suppression entry. Nothing but a fresh double opt-in
// brings back an unsubscribed, bounced, complained or erased address.
// Suppression entries are keyed hashes under the ring's newest key;
// RekeySuppressions moves older keys' entries to it where the address is
// still known, and counts those that cannot move (erasures).
//
// # Sending
//
// Recipients streams the active members of a list whose preferences
// intersect a filter, in id order, in keyset-paged batches (constant
// memory, resumable after any id). Regions and the standard topics are
// stored as bitmasks and custom tags in a side table, so the filter is
// evaluated in SQL. GetMany re-reads a batch just before delivery.
//
// # Feedback events
//
// RecordFeedback keeps what bounce and complaint reports said (package
// feedback parses, classifies and matches them, and calls MarkBounced or
// MarkComplained): one FeedbackEvent per recipient of a report, keyed by
// the report so that recording it twice changes nothing, with the
// recipient's domain and a masked diagnostic, never an address.
// FeedbackEvents, FeedbackTotals and SoftBouncedSends serve `tayori
// feedback`, the send gate and the three-soft-bounces rule.
//
// # Privacy
//
// Logs carry subscriber ids, never addresses. Errors about addresses name
// the field and the problem, never the address.
package subscribers
