-- +goose Up
-- Deliveries are looked up by status for two reasons only: which rows are
-- still open (to finish a send, requeue or cancel it) and which failed
-- (the editor's list). Partial indexes serve both, and a row that is sent
-- or skipped, which is nearly every row, leaves them instead of moving to
-- another place in a full (send_id, status) index. Queries must repeat
-- the exact conditions for SQLite to use them.
DROP INDEX deliveries_status;
CREATE INDEX deliveries_open ON deliveries (send_id, batch) WHERE status IN ('queued','retry','sending');
CREATE INDEX deliveries_trouble ON deliveries (send_id) WHERE status IN ('failed','retry');

-- +goose Down
DROP INDEX deliveries_trouble;
DROP INDEX deliveries_open;
CREATE INDEX deliveries_status ON deliveries (send_id, status);
