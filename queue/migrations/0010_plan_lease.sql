-- +goose Up
-- A lease on a send's planning, as migration 0009 gives one to each
-- batch: the run planning a send holds plan_claim under plan_lease_until
-- (Unix ms), renewed while it runs and set to 0 when it ends. No second
-- run plans the send meanwhile (two planners would number batches over
-- each other), and a planning whose worker died is taken over by another
-- worker within seconds.
ALTER TABLE sends ADD COLUMN plan_claim TEXT NOT NULL DEFAULT '';
ALTER TABLE sends ADD COLUMN plan_lease_until INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE sends DROP COLUMN plan_lease_until;
ALTER TABLE sends DROP COLUMN plan_claim;
