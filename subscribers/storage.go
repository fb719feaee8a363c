package subscribers

import (
	"context"
	"log/slog"
	"time"
)

// Storage is the database under a Store: every read and write the store
// makes, in the store's own terms. There is one implementation per engine,
// package internal/store/sqlite and package internal/store/postgres (their
// NewSubscribers), and store.Subscribers picks the one for a database.
// This package never sees SQL: the rules (who may move to which status,
// what an import may change, tokens, suppression hashes) stay here.
//
// Errors: ErrNotFound for a row that is not there (wrapped), anything else
// as the engine reports it.
type Storage interface {
	Queries
	// InTx runs fn in one write transaction, committing when it returns
	// nil and rolling back otherwise.
	InTx(ctx context.Context, fn func(Queries) error) error
	// PublicIDKey stores key as the public-id key unless one is stored
	// already, and returns the stored one: concurrent first opens agree.
	PublicIDKey(ctx context.Context, key []byte) ([]byte, error)
	// Recipients prepares the keyset-paged walk of Store.Recipients.
	Recipients(ctx context.Context, q RecipientScan) (RecipientPager, error)

	// PrepareImportRow is called for each good import row in the reading
	// goroutine, before its batch reaches BeginImport's transactions, so
	// that an engine can encode the row while the database works on the
	// batch before (SQLite's binary JSON). It may do nothing.
	PrepareImportRow(r *NewRow)
	// BeginImport starts an import: one connection and its transactions.
	BeginImport(ctx context.Context, c ImportConfig) (ImportSession, error)

	// ChangeMark is the newest sequence number of the change log (0: none).
	ChangeMark(ctx context.Context) (int64, error)
	// ChangesAfter returns the oldest sequence number the log still holds
	// (0: empty) and up to limit entries after mark, in order.
	ChangesAfter(ctx context.Context, mark int64, limit int) (first int64, changes []Change, err error)

	// FeedbackSeen reports whether events of this report are stored.
	FeedbackSeen(ctx context.Context, reportKey string) (bool, error)
	// FeedbackEvents returns the events q selects (q.Limit set), newest first.
	FeedbackEvents(ctx context.Context, q FeedbackQuery) ([]FeedbackEvent, error)
	// SoftBouncedSends: see Store.SoftBouncedSends.
	SoftBouncedSends(ctx context.Context, subscriberID int64) ([]int64, error)
	// FeedbackCounts counts the events received in [since, until) by kind,
	// auth and whether they were matched.
	FeedbackCounts(ctx context.Context, since, until time.Time) ([]FeedbackCount, error)
}

// Queries are the reads and writes that run alone or inside a
// transaction (Storage.InTx, ImportTx).
type Queries interface {
	// SubscriberByID and SubscriberByEmailKey read one subscriber.
	SubscriberByID(ctx context.Context, id int64) (Record, error)
	SubscriberByEmailKey(ctx context.Context, key string) (Record, error)
	// SubscribersByID reads the subscribers with these ids (at most 500),
	// in no particular order; missing ids are left out.
	SubscribersByID(ctx context.Context, ids []int64) ([]Record, error)
	// ListSubscribers reads a page for Store.List (q checked, Limit set).
	ListSubscribers(ctx context.Context, q ListQuery) ([]Record, error)
	// EmailOf is a subscriber's address ("" once erased).
	EmailOf(ctx context.Context, id int64) (string, error)

	// InsertSubscriber writes a subscriber row (no tags, lists or
	// history) and returns its id.
	InsertSubscriber(ctx context.Context, r NewRecord) (int64, error)
	SetStatus(ctx context.Context, id int64, st Status, at time.Time) error
	SetName(ctx context.Context, id int64, name string, at time.Time) error
	// SetPrefs replaces the region and topic masks and the custom tags.
	SetPrefs(ctx context.Context, id int64, regions, topics int64, custom []string, at time.Time) error
	// AddTags adds custom tags (present ones are kept).
	AddTags(ctx context.Context, id int64, tags []string) error
	AdvanceConfirm(ctx context.Context, id int64, at time.Time) error
	// SetPendingChoice keeps a returning reader's signup choice (JSON; ""
	// clears it) until they confirm; PendingChoice reads it.
	SetPendingChoice(ctx context.Context, id int64, choice string, at time.Time) error
	PendingChoice(ctx context.Context, id int64) (string, error)
	// SetLegalHold reports false when there is no such subscriber.
	SetLegalHold(ctx context.Context, id int64, hold bool, at time.Time) (bool, error)
	Touch(ctx context.Context, id int64, at time.Time) error
	// EraseData deletes tags, memberships and consents, blanks history
	// causes and clears the row's personal data, leaving status st.
	EraseData(ctx context.Context, id int64, st Status, at time.Time) error
	// PurgeConsents deletes the consents of unsubscribed, bounced and
	// complained subscribers without a legal hold whose status changed
	// before cutoff.
	PurgeConsents(ctx context.Context, cutoff time.Time) (int64, error)
	// PurgePending deletes pending subscribers created before cutoff
	// without a hold or a consent.
	PurgePending(ctx context.Context, cutoff time.Time) (int64, error)

	// ListID is ErrNotFound for an unknown key.
	ListID(ctx context.Context, key string) (int64, error)
	ListKey(ctx context.Context, id int64) (string, error)
	InsertList(ctx context.Context, key, name string, at time.Time) (int64, error)
	// ListSkipsNothing and SetListSkipsNothing read and set a list's
	// setting for readers with nothing this month (ErrNotFound for an
	// unknown key).
	ListSkipsNothing(ctx context.Context, key string) (bool, error)
	SetListSkipsNothing(ctx context.Context, key string, skip bool) error
	// ListCountsClicks and SetListCountsClicks read and set whether a
	// list counts clicks on item links in aggregate (package clicks;
	// ErrNotFound for an unknown key).
	ListCountsClicks(ctx context.Context, key string) (bool, error)
	SetListCountsClicks(ctx context.Context, key string, on bool) error
	// Lists are every list with its counts, by key.
	Lists(ctx context.Context) ([]List, error)
	// JoinList subscribes id to list (again, if it had left) and reports
	// whether anything changed.
	JoinList(ctx context.Context, listID, id int64, at time.Time) (bool, error)
	// JoinListIfNew adds a membership only where there is none.
	JoinListIfNew(ctx context.Context, listID, id int64, at time.Time) error
	// LeaveList reports whether id was subscribed to the list.
	LeaveList(ctx context.Context, listID, id int64, at time.Time) (bool, error)
	LeaveAll(ctx context.Context, id int64, at time.Time) error
	// Memberships counts the lists id is subscribed to.
	Memberships(ctx context.Context, id int64) (int, error)

	// ConsentExists reports whether the same record (time, method, form
	// version, text hash) is stored.
	ConsentExists(ctx context.Context, id int64, c ConsentRow) (bool, error)
	InsertConsent(ctx context.Context, id int64, c ConsentRow) error
	// Consents are a subscriber's records, oldest first.
	Consents(ctx context.Context, id int64) ([]ConsentRow, error)
	// LatestConsents: each subscriber's newest record, for ids (≤ 1000).
	LatestConsents(ctx context.Context, ids []int64) (map[int64]ConsentRow, error)

	InsertHistory(ctx context.Context, id int64, c StatusChange) error
	// History is a subscriber's history, oldest first.
	History(ctx context.Context, id int64) ([]StatusChange, error)

	// AnySuppressed reports whether any of the hashes is suppressed.
	AnySuppressed(ctx context.Context, hashes [][]byte) (bool, error)
	// Suppress stores an entry unless the hash is there already.
	Suppress(ctx context.Context, e Suppression) error
	DeleteSuppression(ctx context.Context, hash []byte) error
	// SuppressionUnder reads the entry of hash under key id (ErrNotFound).
	SuppressionUnder(ctx context.Context, hash []byte, keyID string) (Suppression, error)
	// SuppressionCounts counts the entries under each key id.
	SuppressionCounts(ctx context.Context) (map[string]int64, error)
	// SuppressedReaders are the addresses of bounced and complained
	// subscribers that still have one.
	SuppressedReaders(ctx context.Context) ([]string, error)

	// InsertFeedback stores e (ReceivedAt set) unless its (ReportKey,
	// Seq) is stored, and reports whether it did.
	InsertFeedback(ctx context.Context, e FeedbackEvent) (bool, error)
}

// Record is a subscriber as Storage reads it.
type Record struct {
	ID              int64
	Email, Name     string
	Status          Status
	Regions, Topics int64    // bitmasks over audience.Regions and audience.StandardTopics
	Tags            []string // custom topic tags, sorted
	Lists           []string // keys of the lists subscribed to, sorted
	ConfirmSeq      int64
	LegalHold       bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
	ErasedAt        time.Time // zero unless erased
}

// NewRecord is a subscriber row to write.
type NewRecord struct {
	Email, EmailKey, Name string
	Status                Status
	Regions, Topics       int64
	At                    time.Time
}

// ConsentRow is a consent record as stored: Lists comma-separated keys,
// Prefs an audience.Prefs.Key().
type ConsentRow struct {
	ID                                 int64
	At                                 time.Time
	Method                             Method
	FormVersion, TextSHA256, IP, Agent string
	Lists, Prefs                       string
	RecordedAt                         time.Time
}

// Suppression is an entry of the suppression list.
type Suppression struct {
	Hash      []byte
	KeyID     string
	Reason    Reason
	CreatedAt time.Time
}

// Change is an entry of the change log.
type Change struct{ Seq, SubscriberID int64 }

// FeedbackCount is one group of Storage.FeedbackCounts.
type FeedbackCount struct {
	Kind          string
	Auth, Matched bool
	N             int64
}

// RecipientScan selects the recipients Storage.Recipients pages through:
// active subscribers of list ListID who are subscribed to it, after an id
// and up to UpToID (0: no bound), whose region mask meets Regions (when
// ByRegion) and whose topic mask meets Topics or who carry one of the
// Custom tags (when ByTopic), Limit per page, in id order.
type RecipientScan struct {
	ListID, UpToID int64
	ByRegion       bool
	Regions        int64
	ByTopic        bool
	Topics         int64
	Custom         []string
	Limit          int
}

// RecipientRow is a recipient as Storage reads it.
type RecipientRow struct {
	ID              int64
	Email, Name     string
	Regions, Topics int64
	Tags            []string // custom tags, sorted; nil without
}

// RecipientPager reads pages of a RecipientScan.
type RecipientPager interface {
	// Page appends to out[:0] up to Limit recipients with ids above after.
	Page(ctx context.Context, after int64, out []RecipientRow) ([]RecipientRow, error)
	Close() error
}

// ImportConfig configures an import's session.
type ImportConfig struct {
	// DryRun: every transaction will be rolled back.
	DryRun bool
	// CacheMiB: ImportOptions.CacheMiB (engines without a per-connection
	// cache ignore it).
	CacheMiB int
	Logger   *slog.Logger
}

// ImportSession is one import's hold on the database.
type ImportSession interface {
	// Begin starts the transaction of the next batch.
	Begin(ctx context.Context) (ImportTx, error)
	// Close ends the session; flush is true when every batch committed
	// (SQLite then checkpoints its WAL).
	Close(ctx context.Context, flush bool) error
}

// ImportTx is a transaction of an import.
type ImportTx interface {
	Queries
	// Existing reads the subscribers of these address keys, with their
	// membership of listID, keyed by address key.
	Existing(ctx context.Context, listID int64, keys []string) (map[string]ExistingRow, error)
	// SuppressionCount is the number of suppression entries.
	SuppressionCount(ctx context.Context) (int, error)
	// AllSuppressions returns every suppression hash.
	AllSuppressions(ctx context.Context) ([][]byte, error)
	// SuppressedAmong returns those of hashes that are suppressed.
	SuppressedAmong(ctx context.Context, hashes [][]byte) ([][]byte, error)
	// InsertNew writes new subscribers set-based, in the order given:
	// rows, their custom tags, a creation history entry each, a membership
	// of the list (unless unsubscribed or complained) and their consents.
	// It returns the rows it did not write because their address was
	// added meanwhile by someone else.
	InsertNew(ctx context.Context, b NewBatch) (lost []*NewRow, err error)
	Commit() error
	Rollback() error
}

// NewBatch is a batch of new subscribers for ImportTx.InsertNew.
type NewBatch struct {
	ListID  int64
	ListKey string
	Cause   string
	At      time.Time
	Rows    []*NewRow
}

// ExistingRow is what an import needs of a known subscriber.
type ExistingRow struct {
	ID              int64
	Name            string
	Status          Status
	Regions, Topics int64
	Tags            []string
	// Membership of the import's list: -1 none, 0 left, 1 subscribed.
	Membership int
}

// NewRow is a new subscriber from an import row.
type NewRow struct {
	// Line is the row's line in the file, for error messages.
	Line            int
	Email, Key      string
	Name            string
	Status          Status
	Regions, Topics int64
	Custom          []string
	// Consent, if set, has At, Method, FormVersion, TextSHA256, IP and
	// UserAgent; PrefsKey is the preferences it covers.
	Consent  *Consent
	PrefsKey string
	// Encoded is the engine's own encoding of the row, made by
	// Storage.PrepareImportRow.
	Encoded [2][]byte
}
