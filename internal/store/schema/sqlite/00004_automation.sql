-- +goose Up
-- The automation's tables: outbound webhooks (package webhooks), the
-- welcome mail of each list (package welcome) and the monthly rhythm
-- (package rhythm). Times are Unix milliseconds (UTC).

-- webhook_events is the outbox: an event is written here on the request
-- that caused it (no Redis on that path) and a dispatcher turns it into one
-- webhook_deliveries row and one Asynq task per endpoint. Payloads carry
-- the subscriber's public id and address, never the internal id.
CREATE TABLE webhook_endpoints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    url         TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    secret      TEXT    NOT NULL,            -- whsec_<base64>: the receiver needs it to verify
    events      TEXT    NOT NULL DEFAULT '', -- comma-separated event types; '' means every type
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE webhook_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id        TEXT    NOT NULL UNIQUE,   -- the webhook-id header, the same on every attempt and replay
    type          TEXT    NOT NULL,
    body          BLOB    NOT NULL,          -- the exact JSON signed and sent
    created_at    INTEGER NOT NULL,
    dispatched_at INTEGER                    -- NULL: deliveries not yet queued
);
CREATE INDEX webhook_events_undispatched ON webhook_events (id) WHERE dispatched_at IS NULL;
CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state       TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER NOT NULL DEFAULT 0,  -- the endpoint's HTTP status; 0: no answer
    updated_at  INTEGER NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    status      INTEGER NOT NULL,            -- HTTP status; 0: no answer
    response    TEXT    NOT NULL DEFAULT '', -- the answer's first 512 bytes, or the network error
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- The welcome mail of each list: sent once a reader confirms, unless the
-- editor turned it off. A list without a row uses the default template, on.
CREATE TABLE welcome_templates (
    list       TEXT    PRIMARY KEY,
    enabled    INTEGER NOT NULL,
    subject    TEXT    NOT NULL,
    body       TEXT    NOT NULL,   -- text/template source of the plain-text body
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL DEFAULT ''
);

-- The monthly rhythm: one recurring send rule per list, and what the
-- runner did for each month, so that a send is created and a reminder
-- mailed once per month whatever the number of processes.
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
DROP TABLE welcome_templates;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhook_endpoints;
