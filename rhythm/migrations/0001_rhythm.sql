-- +goose Up
-- The monthly rhythm (package rhythm): one recurring send rule per list,
-- and what the runner did for each month, so that a send is created and a
-- reminder mailed once per month whatever the number of processes.
-- Times are Unix milliseconds (UTC).
CREATE TABLE rhythm_rules (
    list       TEXT    PRIMARY KEY,
    rule       TEXT    NOT NULL,   -- JSON of rhythm.Rule
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL DEFAULT ''
);
CREATE TABLE rhythm_runs (
    list  TEXT    NOT NULL,
    month TEXT    NOT NULL,        -- "2026-01", the issue's slug
    kind  TEXT    NOT NULL CHECK (kind IN ('send','reminder')),
    at    INTEGER NOT NULL,
    PRIMARY KEY (list, month, kind)
);

-- +goose Down
DROP TABLE rhythm_runs;
DROP TABLE rhythm_rules;
