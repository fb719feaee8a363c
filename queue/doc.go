// Package queue delivers newsletter issues: it records sends and their
// per-recipient deliveries in the send ledger ([Ledger]: SQLite or
// PostgreSQL, implemented in internal/store), fans the work out as Asynq
// tasks on Redis, and sends each reader's copy over SMTP exactly once in
// effect.
//
// A send moves through the states
//
//	scheduled → planning → sending → done
//
// and may be paused (resumable) or cancelled, or end failed when it cannot
// be planned (its list is gone, or planning failed Config.PlanAttempts
// times; the reason is kept). An issue goes to a list in one send: Create
// refuses a second (a *DuplicateError names the first) unless asked with
// NewSend.Again, which sends it to the readers with no copy from an
// earlier send, and NewSend.Key makes creating a send idempotent. A send
// due now has its first batch planned and queued by Create itself.
//
// Planning (task "send:plan") streams the list's recipients in keyset
// batches, records one delivery row
// per reader who has something to read, and enqueues "send:batch" tasks
// that carry only ids (a few bytes per recipient in Redis). A batch
// handler claims its batch (its row in batch_claims) and reads the
// batch's unfinished deliveries, re-reads the subscribers, renders each
// variant once per process, hands the Sender the variant and the reader's
// values, and records each outcome through a group-commit writer. A copy
// sent on its first attempt, nearly every copy, is not written into its
// delivery row: each commit appends one batch_sent row per batch holding
// that batch's accepted copies and the relay's replies, and delivery_state reads a delivery as its row overridden by such an
// entry. Other outcomes (skips, retries, failures, a retried copy's
// success) update their rows. A Sender that offers a [Stream]
// sends the whole batch on one connection, several copies per round trip.
// A batch none of whose deliveries is open is marked done; the send is
// done when every batch is.
//
// A send's figures are kept as outcomes are recorded (send_counts:
// triggers on deliveries and batch_sent, and planning's own increments),
// so reading a send's progress costs the same for any list;
// Ledger.Recount, the full recount, is what tests check them against.
//
// An outcome that cannot be committed (a full disk) is kept and tried
// again until it is; meanwhile no batch sends another copy, so nothing
// the relay accepted is sent again.
//
// Asynq is at-least-once. The claim in the ledger is the real guard: an
// outcome is recorded only under the batch's current claim and only for a
// row still open (a claim leaves out the copies in batch_sent), so a
// finished delivery is never sent again by a re-run, a
// stale run cannot overwrite the new run's records, and a re-run after a
// crash resends at most the copies that were in flight: per connection,
// those sent but not yet answered (at most mailer.MaxInFlight), and
// those answered within the last group-commit window.
//
// A run holds its batch under a lease (batch_claims.lease_until) that its process renews every LeaseTTL/3; no other run
// claims a batch under a live lease, and every worker re-enqueues within
// seconds the batches whose lease lapsed because their worker died (see
// lease.go). Redis holds only work in progress: every worker compares the
// unfinished sends with their tasks in Redis every ReconcileInterval and
// re-creates the missing ones from the store (reconcile.go), as does
// Service.Requeue (`tayori send resume ID`) on demand.
//
// The package owns neither its storage, the subscriber store, the renderer
// nor the SMTP client: it declares the small interfaces it needs
// ([Ledger], [Directory], [Tokens], [Renderer], [Sender]) and cmd/tayori
// passes the concrete types (store.Ledger(db) for the ledger). A store
// that cannot write (a full disk) is ErrStoreFull.
//
// Typical wiring:
//
//	svc, err := queue.New(ctx, store.Ledger(db), rdb, queue.Config{...}, queue.Deps{...}, logger)
//	srv := svc.NewServer(queue.ServerConfig{Concurrency: 8})
//	err = srv.Run(ctx)
package queue
