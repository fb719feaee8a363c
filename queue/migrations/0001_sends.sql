-- +goose Up
-- sends: one row per send of an issue to a list. Times are Unix milliseconds (UTC).
CREATE TABLE sends (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uid           TEXT    NOT NULL UNIQUE,          -- random, part of every Asynq TaskID of the send
    issue_slug    TEXT    NOT NULL,
    issue_json    BLOB    NOT NULL,                 -- the parsed compose.Issue, so any worker can load it
    list_key      TEXT    NOT NULL,
    filter_json   TEXT,                             -- audience.Prefs restricting the audience, NULL for none
    state         TEXT    NOT NULL CHECK (state IN ('scheduled','planning','sending','done','paused','cancelled')),
    paused_from   TEXT,                             -- state to return to on resume
    scheduled_at  INTEGER NOT NULL,
    not_after     INTEGER,                          -- NULL: no limit
    plan_cursor   INTEGER NOT NULL DEFAULT 0,       -- last subscriber id planned (keyset resume point)
    plan_done     INTEGER NOT NULL DEFAULT 0,
    batches       INTEGER NOT NULL DEFAULT 0,       -- batch tasks planned so far
    planned       INTEGER NOT NULL DEFAULT 0,
    sent          INTEGER NOT NULL DEFAULT 0,       -- counters below are a snapshot taken when the send ends;
    skipped       INTEGER NOT NULL DEFAULT 0,       -- live figures come from deliveries
    failed_temp   INTEGER NOT NULL DEFAULT 0,
    failed_perm   INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    last_error    TEXT    NOT NULL DEFAULT '',
    pause_reason  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sends_state ON sends (state);

-- deliveries: one row per (send, recipient); the claim before sending and
-- the record after it are what make each copy go out once.
CREATE TABLE deliveries (
    send_id       INTEGER NOT NULL REFERENCES sends (id) ON DELETE CASCADE,
    subscriber_id INTEGER NOT NULL,
    batch         INTEGER NOT NULL,
    variant       TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued','sending','retry','sent','skipped','failed','cancelled')),
    permanent     INTEGER NOT NULL DEFAULT 0,       -- for failed: 1 after a 5xx, 0 after retries ran out
    attempts      INTEGER NOT NULL DEFAULT 0,
    claim         TEXT    NOT NULL DEFAULT '',
    reply         TEXT    NOT NULL DEFAULT '',
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (send_id, subscriber_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_status ON deliveries (send_id, status);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE sends;
