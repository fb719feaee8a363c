-- +goose Up
-- The send ledger (package queue, docs/design/delivery.md): sends, one
-- delivery row per reader of a send, the claims and leases of batches, the
-- copies accepted on their first attempt (batch_sent) and each send's kept
-- counts (send_counts). Folded from queue/migrations 0001–0010 and the Go
-- migration 8 of the first development history.

-- A send. issue_json, a large value, is the last column, so that reading a
-- send's state and times does not walk the issue's overflow pages.
CREATE TABLE sends (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    uid              TEXT    NOT NULL UNIQUE,        -- random, part of every Asynq TaskID of the send
    issue_slug       TEXT    NOT NULL,
    list_key         TEXT    NOT NULL,
    filter_json      TEXT,                           -- audience.Prefs restricting the audience, NULL for none
    state            TEXT    NOT NULL CHECK (state IN ('scheduled','planning','sending','done','paused','cancelled','failed')),
    paused_from      TEXT,                           -- state to return to on resume
    scheduled_at     INTEGER NOT NULL,
    not_after        INTEGER,                        -- NULL: no limit
    plan_cursor      INTEGER NOT NULL DEFAULT 0,     -- last subscriber id planned (keyset resume point)
    plan_done        INTEGER NOT NULL DEFAULT 0,
    batches          INTEGER NOT NULL DEFAULT 0,     -- batch tasks planned so far
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    last_error       TEXT    NOT NULL DEFAULT '',
    pause_reason     TEXT    NOT NULL DEFAULT '',
    cancel_mark      INTEGER NOT NULL DEFAULT 0,     -- max(batch_sent.rowid) when cancelled
    again            INTEGER NOT NULL DEFAULT 0,     -- a send again to the readers who had no copy
    request_key      TEXT    UNIQUE,                 -- idempotency key
    request_hash     TEXT,
    plan_claim       TEXT    NOT NULL DEFAULT '',    -- the planning run's claim
    plan_lease_until INTEGER NOT NULL DEFAULT 0,     -- its lease, Unix ms
    issue_json       BLOB    NOT NULL                -- the parsed compose.Issue, so any worker can load it
);
CREATE INDEX sends_state ON sends (state);
-- The earlier sends of an issue to a list, for Create.
CREATE INDEX sends_issue_list ON sends (issue_slug, list_key);

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
-- Failed and retrying rows are few: a partial index. Open rows have none
-- (a send's batches say when they are done); they are found along the
-- primary key, a batch being one key range.
CREATE INDEX deliveries_trouble ON deliveries (send_id) WHERE status IN ('failed','retry');

-- One row per batch: the claim of the run that owns it, its lease and key
-- range, and whether it is done.
CREATE TABLE batch_claims (
    send_id     INTEGER NOT NULL REFERENCES sends (id) ON DELETE CASCADE,
    batch       INTEGER NOT NULL,
    claim       TEXT    NOT NULL,
    claimed_at  INTEGER NOT NULL,
    done        INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER NOT NULL DEFAULT 0,
    lo          INTEGER NOT NULL DEFAULT 0,
    hi          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (send_id, batch)
) WITHOUT ROWID;
CREATE INDEX batch_claims_open ON batch_claims (send_id) WHERE done = 0;
CREATE INDEX batch_claims_leased ON batch_claims (lease_until) WHERE done = 0 AND lease_until > 0;

-- Copies accepted on their first attempt, one row per batch run and group
-- commit, as a JSON array of [subscriber_id, reply]; their delivery rows
-- stay queued (or cancelled, when the editor cancelled while they were in
-- flight). n and at in the index: a send's counts (sum of n) and its
-- copies sent in a time window read the index alone.
CREATE TABLE batch_sent (
    send_id INTEGER NOT NULL REFERENCES sends (id) ON DELETE CASCADE,
    batch   INTEGER NOT NULL,
    n       INTEGER NOT NULL,   -- entries in sent
    at      INTEGER NOT NULL,   -- commit time, Unix ms
    sent    TEXT    NOT NULL    -- [[subscriber_id, reply], ...]
);
CREATE INDEX batch_sent_batch ON batch_sent (send_id, batch, n, at);

CREATE VIEW sent_copies AS
SELECT bs.send_id, bs.batch, j.value ->> 0 AS subscriber_id, j.value ->> 1 AS reply, bs.at
  FROM batch_sent bs, json_each(bs.sent) j;

-- A delivery as it stands: its row overridden by its entry in batch_sent.
CREATE VIEW delivery_state AS
SELECT send_id, subscriber_id, batch, variant,
       CASE WHEN e IS NULL THEN status ELSE 'sent' END AS status,
       CASE WHEN e IS NULL THEN permanent ELSE 0 END AS permanent,
       attempts + (e IS NOT NULL) AS attempts,
       CASE WHEN e IS NULL THEN reply ELSE e ->> 0 END AS reply,
       CASE WHEN e IS NULL THEN updated_at ELSE e ->> 1 END AS updated_at
  FROM (SELECT d.*, (SELECT json_array(c.reply, c.at) FROM sent_copies c
                      WHERE c.send_id = d.send_id AND c.batch = d.batch AND c.subscriber_id = d.subscriber_id) AS e
          FROM deliveries d);

-- A send's figures, kept as outcomes are recorded: a progress read costs
-- the same at 1,000 readers as at 1,000,000. Columns hold tallies of
-- delivery rows by status and of batch_sent copies; queue.KeptCounts puts
-- them together as the full recount would. Planning adds its rows itself.
CREATE TABLE send_counts (
    send_id     INTEGER PRIMARY KEY REFERENCES sends (id) ON DELETE CASCADE,
    planned     INTEGER NOT NULL DEFAULT 0,  -- delivery rows
    had_it      INTEGER NOT NULL DEFAULT 0,  -- readers left out: an earlier send gave them the issue (again)
    queued      INTEGER NOT NULL DEFAULT 0,  -- rows queued or sending
    retry       INTEGER NOT NULL DEFAULT 0,  -- rows retry
    sent        INTEGER NOT NULL DEFAULT 0,  -- rows sent (copies sent after a retry)
    skipped     INTEGER NOT NULL DEFAULT 0,
    failed_temp INTEGER NOT NULL DEFAULT 0,
    failed_perm INTEGER NOT NULL DEFAULT 0,
    cancelled   INTEGER NOT NULL DEFAULT 0,  -- rows cancelled
    first_sent  INTEGER NOT NULL DEFAULT 0,  -- copies in batch_sent (their rows are queued, or cancelled:)
    raced       INTEGER NOT NULL DEFAULT 0   -- copies in batch_sent whose rows a cancel marked in flight
);

-- +goose StatementBegin
CREATE TRIGGER sends_counts_row AFTER INSERT ON sends BEGIN
    INSERT INTO send_counts (send_id) VALUES (new.id);
END;
-- +goose StatementEnd

-- One count to another when a row changes status (or a failure its kind).
-- +goose StatementBegin
CREATE TRIGGER deliveries_counts AFTER UPDATE OF status, permanent ON deliveries
WHEN old.status IS NOT new.status OR (new.status = 'failed' AND (old.permanent <> 0) IS NOT (new.permanent <> 0))
BEGIN
    UPDATE send_counts SET
        queued      = queued      + (new.status IN ('queued','sending')) - (old.status IN ('queued','sending')),
        retry       = retry       + (new.status = 'retry')     - (old.status = 'retry'),
        sent        = sent        + (new.status = 'sent')      - (old.status = 'sent'),
        skipped     = skipped     + (new.status = 'skipped')   - (old.status = 'skipped'),
        failed_temp = failed_temp + (new.status = 'failed' AND new.permanent = 0) - (old.status = 'failed' AND old.permanent = 0),
        failed_perm = failed_perm + (new.status = 'failed' AND new.permanent <> 0) - (old.status = 'failed' AND old.permanent <> 0),
        cancelled   = cancelled   + (new.status = 'cancelled') - (old.status = 'cancelled')
     WHERE send_id = new.send_id;
END;
-- +goose StatementEnd

-- A batch_sent row's copies are sent. Those whose rows are cancelled were
-- in flight when the editor cancelled (a cancel leaves the rows of copies
-- already in batch_sent alone, and nothing else changes a row once its
-- copy is there): they are looked for, a key seek each, only in a send
-- with cancelled rows.
-- +goose StatementBegin
CREATE TRIGGER batch_sent_counts AFTER INSERT ON batch_sent BEGIN
    UPDATE send_counts SET
        first_sent = first_sent + new.n,
        raced = raced + CASE WHEN cancelled > 0 THEN
            (SELECT count(*) FROM json_each(new.sent) j CROSS JOIN deliveries d
              ON d.send_id = new.send_id AND d.subscriber_id = j.value ->> 0 WHERE d.status = 'cancelled')
            ELSE 0 END
     WHERE send_id = new.send_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP VIEW delivery_state;
DROP VIEW sent_copies;
DROP TABLE send_counts;
DROP TABLE batch_sent;
DROP TABLE batch_claims;
DROP TABLE deliveries;
DROP TABLE sends;
