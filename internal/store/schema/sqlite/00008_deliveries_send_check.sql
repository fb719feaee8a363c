-- +goose Up
-- Nothing changes on SQLite: migration 8 replaces PostgreSQL's per-row
-- foreign key check of deliveries.send_id by a per-statement one (see
-- ../postgres/00008_deliveries_send_check.sql). SQLite's check is a B-tree
-- probe in the same process, cheap beside the insert, and changing a
-- foreign key here means rebuilding the table.
SELECT 1;

-- +goose Down
SELECT 1;
