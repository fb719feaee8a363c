-- +goose Up
-- A send is finished when every one of its batches is: planning gives each
-- batch a batch_claims row, and done marks a batch none of whose
-- deliveries is open any more. That replaces the deliveries_open index,
-- which every recorded outcome had to update (a delete from the index for
-- nearly every row: about a fifth of the cost of recording it). Batches
-- not yet done are few and have a partial index.
ALTER TABLE batch_claims ADD COLUMN done INTEGER NOT NULL DEFAULT 0;
CREATE INDEX batch_claims_open ON batch_claims (send_id) WHERE done = 0;
-- Sends under way at upgrade: every planned batch gets a row, and those
-- without an open delivery are done (found with the old index).
INSERT INTO batch_claims (send_id, batch, claim, claimed_at)
SELECT DISTINCT d.send_id, d.batch, '', 0 FROM deliveries d JOIN sends s ON s.id = d.send_id
 WHERE s.state IN ('planning', 'sending', 'paused')
ON CONFLICT (send_id, batch) DO NOTHING;
UPDATE batch_claims SET done = 1
 WHERE NOT EXISTS (SELECT 1 FROM deliveries AS d INDEXED BY deliveries_open
                    WHERE d.send_id = batch_claims.send_id AND d.batch = batch_claims.batch
                      AND d.status IN ('queued','retry','sending'));
DROP INDEX deliveries_open;

-- +goose Down
CREATE INDEX deliveries_open ON deliveries (send_id, batch) WHERE status IN ('queued','retry','sending');
DROP INDEX batch_claims_open;
ALTER TABLE batch_claims DROP COLUMN done;
