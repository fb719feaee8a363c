-- +goose Up
-- batch_claims: which run of a batch task owns the batch. A run claims its
-- batch with one write instead of marking each delivery row, and records
-- an outcome only while its claim stands, so a stale run (one whose task
-- was taken over) cannot overwrite what the new run records.
CREATE TABLE batch_claims (
    send_id    INTEGER NOT NULL REFERENCES sends (id) ON DELETE CASCADE,
    batch      INTEGER NOT NULL,
    claim      TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (send_id, batch)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE batch_claims;
