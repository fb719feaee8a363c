-- +goose Up
-- A lease on each batch's claim. The process running a batch renews
-- lease_until (Unix ms) every third of the lease while the batch runs and
-- sets it to 0 when the run ends; a run claims a batch only when no live
-- lease holds it. A lease that lapsed means its process died: every
-- worker looks for such batches and re-enqueues them within seconds,
-- instead of waiting for Asynq to recover the dead worker's task (its 30 s
-- lease and its recoverer's round: 70-80 s). lo and hi are the batch's
-- subscriber id range, written by the claim, so that its open rows are
-- found along the primary key.
ALTER TABLE batch_claims ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batch_claims ADD COLUMN lo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batch_claims ADD COLUMN hi INTEGER NOT NULL DEFAULT 0;
-- Leased batches not done: the few running right now and those of dead runs.
CREATE INDEX batch_claims_leased ON batch_claims (lease_until) WHERE done = 0 AND lease_until > 0;

-- +goose Down
DROP INDEX batch_claims_leased;
ALTER TABLE batch_claims DROP COLUMN hi;
ALTER TABLE batch_claims DROP COLUMN lo;
ALTER TABLE batch_claims DROP COLUMN lease_until;
