package queue

import (
	"context"
	"errors"
	"time"
)

// Ledger is the send ledger's storage: sends, their deliveries, batch
// claims and leases, the copies sent on their first attempt (batch_sent)
// and the kept counts (send_counts). The queue decides (states, batching,
// leases, what to send); the Ledger keeps the records and holds the
// guarantees of docs/design/delivery.md in its statements: a claim is
// taken only from a run without a live lease, an outcome is recorded only
// under its batch's current claim and for a row still open, the counts
// follow every change in the same transaction.
//
// Implementations are in internal/store/sqlite and internal/store/postgres;
// store.Ledger picks the one for a database. Errors match ErrNotFound,
// ErrBusy, ErrLeaseLost, ErrDuplicate and ErrStoreFull with errors.Is
// where the method says so.
type Ledger interface {
	// CreateSend records a send in state scheduled, in one transaction
	// with its checks. With r.Key set and a send recorded under that key,
	// it records nothing and returns that send's id with Existing and its
	// request hash. Otherwise check is called with the earlier sends of
	// r.Slug to r.List (newest first), and an error from it is returned
	// as is, with nothing recorded. A uid or key taken meanwhile is
	// ErrDuplicate.
	CreateSend(ctx context.Context, r SendRecord, check func([]EarlierSend) error) (Created, error)
	// SendByKey returns the send recorded under an idempotency key and
	// its request hash; ok is false if there is none.
	SendByKey(ctx context.Context, key string) (id int64, hash string, ok bool, err error)
	// EarlierSends lists the sends of an issue to a list, newest first.
	EarlierSends(ctx context.Context, slug, list string) ([]EarlierSend, error)
	// Send reads a send with its kept counts (its issue only withIssue):
	// ErrNotFound if there is none.
	Send(ctx context.Context, id int64, withIssue bool) (*SendRow, error)
	// Sends lists the latest sends, newest first, without their issues.
	Sends(ctx context.Context, limit int) ([]*SendRow, error)
	// SendState returns a send's state.
	SendState(ctx context.Context, id int64) (State, error)
	// UIDExists reports whether a send has uid.
	UIDExists(ctx context.Context, uid string) (bool, error)
	// SendsByState counts the sends in each state (states with none are
	// absent).
	SendsByState(ctx context.Context) (map[State]int64, error)
	// UnfinishedSends lists the sends not in a final state, by id.
	UnfinishedSends(ctx context.Context) ([]int64, error)

	// Pause pauses a scheduled, planning or sending send; Resume returns
	// a paused send to where it was. Both report whether they changed it.
	Pause(ctx context.Context, id int64, reason string, now time.Time) (bool, error)
	Resume(ctx context.Context, id int64, now time.Time) (bool, error)
	// Cancel ends a send that is not final with reason, marks its open
	// deliveries cancelled (not the copies in batch_sent) and notes where
	// batch_sent stood, so that copies in flight recorded after it are
	// counted as sent. Fail does the same for a send not yet planned
	// (scheduled or planning, or paused from those), state failed. Both
	// report whether they changed the send.
	Cancel(ctx context.Context, id int64, reason string, now time.Time) (bool, error)
	Fail(ctx context.Context, id int64, reason string, now time.Time) (bool, error)
	// FinishIfDone moves a sending send whose planning is over and every
	// batch done to done, and reports whether it did.
	FinishIfDone(ctx context.Context, id int64, now time.Time) (bool, error)

	// StartPlanning moves a scheduled send to planning; with claim set,
	// under that planning lease until leaseUntil (Unix ms), in the same
	// statement. It reports whether the send was scheduled.
	StartPlanning(ctx context.Context, id int64, now time.Time, claim string, leaseUntil int64) (bool, error)
	// PlanDone records that planning is over: planning becomes sending,
	// a send paused while planning will resume to sending.
	PlanDone(ctx context.Context, id int64, now time.Time) error
	// NotePlanError keeps a failed planning attempt's reason on a send
	// still scheduled or planning.
	NotePlanError(ctx context.Context, id int64, note string, now time.Time) error
	// HadIt lists, ascending, the readers with a copy from a send of the
	// issue to the list older than send before.
	HadIt(ctx context.Context, slug, list string, before int64) ([]int64, error)
	// InsertDeliveries records a page of planning in one transaction (see
	// PlanPage) and returns the readers whose rows are new, in order: row
	// i of them is in batch p.FirstBatch + i/p.BatchSize. ErrLeaseLost if
	// p.PlanClaim is set and no longer the send's.
	InsertDeliveries(ctx context.Context, p PlanPage) ([]int64, error)
	// OpenRows lists a send's open deliveries (not in batch_sent) by batch.
	OpenRows(ctx context.Context, sendID int64) (map[int64][]int64, error)
	// ClaimPlan takes a send's planning under a lease until (Unix ms)
	// unless another run holds it under a live one (then false).
	ClaimPlan(ctx context.Context, id int64, claim string, now time.Time, until int64) (bool, error)
	// LapsedPlans lists the plannings whose lease ended before now.
	LapsedPlans(ctx context.Context, now time.Time) ([]LapsedPlan, error)
	// TakeOverPlan replaces a lapsed planning's claim if it is still l's.
	TakeOverPlan(ctx context.Context, l LapsedPlan, claim string, until int64) (bool, error)

	// Claim takes batch b of a send for a run (claim) under a lease until
	// (Unix ms), unless another run holds it under a live lease
	// (ErrBusy), and returns its open deliveries in the key range lo–hi,
	// leaving out those in batch_sent.
	Claim(ctx context.Context, b BatchClaim) ([]ClaimedRow, error)
	// FinishBatch marks a batch done under claim: at once with allFinal,
	// else when none of its rows (key range lo–hi) is open.
	FinishBatch(ctx context.Context, sendID, batch int64, claim string, lo, hi int64, allFinal bool) error
	// RenewLeases extends each lease to until while its claim stands, in
	// one transaction, and reports those whose claim is gone. A lease of
	// batch PlanLease is a send's planning lease.
	RenewLeases(ctx context.Context, leases []LeaseRef, until int64) (lost []bool, err error)
	// ReleaseLease ends a lease while its claim stands.
	ReleaseLease(ctx context.Context, l LeaseRef) error
	// LapsedLeases lists up to 1000 batches of planning or sending sends
	// whose lease ended before now, oldest first.
	LapsedLeases(ctx context.Context, now time.Time) ([]Lapsed, error)
	// TakeOver replaces a lapsed batch's claim (if it is still l's) with
	// claim until until. With openRows it also returns, in the same
	// transaction, the batch's open deliveries, and marks the batch done
	// if there are none.
	TakeOver(ctx context.Context, l Lapsed, claim string, until int64, openRows bool) (ok bool, open []int64, err error)
	// UnfinishedBatches lists a send's batches not done, by number.
	UnfinishedBatches(ctx context.Context, sendID int64) ([]BatchRange, error)
	// OpenRowsOfBatch lists a batch's open deliveries in key range lo–hi
	// (all of the send's if hi is 0), leaving out those in batch_sent.
	OpenRowsOfBatch(ctx context.Context, sendID, batch, lo, hi int64) ([]int64, error)
	// MarkBatchDone marks a batch done (its last run died between its
	// last outcome and marking it).
	MarkBatchDone(ctx context.Context, sendID, batch int64) error

	// Record commits a group of outcomes in one transaction: first copies
	// sent (Outcome.Appended) go to batch_sent, one row per batch run,
	// the others update their rows; each only under the claim it was
	// made under, each row only while open. A full disk is ErrStoreFull.
	Record(ctx context.Context, group []Outcome, now time.Time) error

	// Failures lists up to limit failed or retrying deliveries of a send,
	// the latest first.
	Failures(ctx context.Context, sendID int64, limit int) ([]Failure, error)
	// History lists a reader's deliveries, oldest send first.
	History(ctx context.Context, subscriberID int64) ([]Delivered, error)
	// LastAttempts returns a reader's latest n sent or failed deliveries.
	LastAttempts(ctx context.Context, subscriberID int64, n int) ([]Attempt, error)
	// SentBetween counts the copies accepted in [since, until).
	SentBetween(ctx context.Context, since, until time.Time) (int64, error)
	// Refusals lists up to limit failed deliveries in [since, until),
	// the latest sends first.
	Refusals(ctx context.Context, since, until time.Time, limit int) ([]Refusal, error)

	// Recount returns a send's kept counts and its full recount from
	// every row, in one transaction (for tests and checks).
	Recount(ctx context.Context, id int64) (kept, live Counts, err error)
	// Close releases prepared statements (not the database).
	Close() error

	// ListMailOutbox keeps the list mails (the welcome mail) until the
	// relay accepts them (listmail.go).
	ListMailOutbox
}

// Ledger errors, matched with errors.Is.
var (
	// ErrBusy: another run holds the batch (or the planning) under a live
	// lease. It waits like a pause.
	ErrBusy = errBusy
	// ErrLeaseLost: the run's lease lapsed or another run took it over.
	ErrLeaseLost = errLeaseLost
	// ErrStoreFull: the store cannot write (its disk is full). Outcomes
	// are kept and tried again; tasks wait without using up attempts.
	ErrStoreFull = errors.New("the store is full")
)

// PlanLease is the batch number of a send's planning lease in LeaseRef.
const PlanLease = planBatch

// SendRecord is what CreateSend records.
type SendRecord struct {
	UID, Slug, List string
	IssueJSON       []byte
	FilterJSON      string // "": no filter
	ScheduledAt     int64  // Unix ms
	NotAfter        int64  // Unix ms, 0: none
	Now             int64  // Unix ms
	Again           bool
	Key, Hash       string // "": no idempotency key
}

// Created is CreateSend's result.
type Created struct {
	ID int64
	// Existing: a send was recorded with the key already; Hash is its
	// request's.
	Existing bool
	Hash     string
}

// SendRow is a send as stored. Times are Unix ms, 0 for none.
type SendRow struct {
	ID                     int64
	UID, Slug, List        string
	FilterJSON             string // "": none
	State, PausedFrom      State
	ScheduledAt, NotAfter  int64
	PlanCursor             int64
	PlanDone               bool
	Batches                int64
	CreatedAt, UpdatedAt   int64
	StartedAt, FinishedAt  int64
	LastError, PauseReason string
	Again                  bool
	Kept                   KeptCounts
	IssueJSON              []byte // nil unless asked for
}

// KeptCounts is a send_counts row: tallies of delivery rows by status,
// and of the copies in batch_sent.
type KeptCounts struct {
	Planned, HadIt, Queued, Retry, Sent, Skipped, FailedTemp, FailedPerm, Cancelled int64
	// FirstSent counts copies in batch_sent; Raced those of them whose
	// rows a cancel marked while they were in flight.
	FirstSent, Raced int64
}

// Counts puts the tallies together as a full recount does: a copy in
// batch_sent is sent, and its row is queued, or cancelled if the copy was
// in flight when the editor cancelled (raced).
func (k KeptCounts) Counts() Counts {
	return Counts{
		Planned: k.Planned, Queued: k.Queued - (k.FirstSent - k.Raced), Retrying: k.Retry,
		Sent: k.Sent + k.FirstSent, Skipped: k.Skipped, FailedTemp: k.FailedTemp, FailedPerm: k.FailedPerm,
		Cancelled: k.Cancelled - k.Raced, AlreadyHad: k.HadIt,
	}
}

// PlanPage is one page of planning: Rows to record (in order), cut into
// batches of BatchSize numbered from FirstBatch, each batch with its
// batch_claims row; the send's counts up by the new rows and, if all rows
// were new, HadIt by Had; its cursor moved to Cursor and its batch count
// to the next free number.
type PlanPage struct {
	SendID     int64
	Rows       []PlanRow
	Had        int64
	Cursor     int64
	FirstBatch int64
	BatchSize  int
	Now        int64  // Unix ms
	PlanClaim  string // "": planning under no lease (tests)
}

// PlanRow is one reader's delivery to record.
type PlanRow struct {
	SubscriberID int64
	Variant      string
}

// BatchClaim is a run's claim of a batch.
type BatchClaim struct {
	SendID, Batch int64
	Claim         string
	Now, Until    int64 // Unix ms
	Lo, Hi        int64 // the batch's key range
}

// ClaimedRow is an open delivery of a claimed batch.
type ClaimedRow struct {
	SubscriberID int64
	Attempts     int
}

// LeaseRef names a run's lease: a batch's, or a send's planning
// (Batch PlanLease).
type LeaseRef struct {
	SendID, Batch int64
	Claim         string
}

// Lapsed is a batch whose lease lapsed.
type Lapsed struct {
	SendID int64
	UID    string
	Batch  int64
	Claim  string
	Until  int64
	Lo, Hi int64
}

// LapsedPlan is a planning whose lease lapsed.
type LapsedPlan struct {
	ID         int64
	UID, Claim string
	Until      int64
}

// BatchRange is a batch and its key range (Hi 0: not known, claimed
// before ranges were kept).
type BatchRange struct{ Batch, Lo, Hi int64 }

// Outcome is the result of one delivery attempt, to be committed.
type Outcome struct {
	SendID, SubscriberID int64
	Batch                int64
	Claim                string
	Status               string // sent, skipped, retry, failed
	Permanent            bool
	Reply                string
	// First: the row was claimed unattempted (queued, attempts 0). A
	// first copy that was sent goes to batch_sent instead of rewriting
	// its row.
	First bool
}

// Appended reports whether o is recorded in batch_sent.
func (o *Outcome) Appended() bool { return o.First && o.Status == "sent" }
