-- +goose Up
-- Nothing changes on SQLite. Migration 9 replaces two of PostgreSQL's
-- per-row triggers on the delivery hot path (the foreign key check of
-- deliveries.send_id, and batch_sent's counts) by per-statement ones (see
-- ../postgres/00009_deliveries_send_check.sql). Here the foreign key check
-- is a B-tree probe in the same process, cheap beside the insert (and
-- changing a foreign key means rebuilding the table), and SQLite has no
-- statement triggers.
SELECT 1;

-- +goose Down
SELECT 1;
