-- Subscribers schema (SQLite). Kept close to standard SQL so that a
-- PostgreSQL port changes only types: INTEGER PRIMARY KEY -> BIGINT
-- GENERATED ALWAYS AS IDENTITY, BLOB -> BYTEA, TEXT times -> TIMESTAMPTZ,
-- and WITHOUT ROWID is dropped.
--
-- Times are UTC text "YYYY-MM-DDTHH:MM:SS.ffffffZ" (fixed width, so text
-- order is time order).

-- +goose Up
CREATE TABLE lists (
    id         INTEGER PRIMARY KEY,
    key        TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

INSERT INTO lists (key, name, created_at)
VALUES ('monthly', 'AI政策動向 (monthly)', strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));

CREATE TABLE subscribers (
    id          INTEGER PRIMARY KEY,
    public_id   TEXT    NOT NULL UNIQUE,      -- random, used in tokens and URLs
    email       TEXT,                         -- normalised (local part as given); NULL once erased
    email_key   TEXT    UNIQUE,               -- lower(email): one subscriber per mailbox; NULL once erased
    name        TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained')),
    regions     INTEGER NOT NULL,             -- bit i set = audience.Regions[i] chosen
    topics      INTEGER NOT NULL,             -- bit i set = audience.StandardTopics[i] chosen; custom tags in subscriber_tags
    confirm_seq INTEGER NOT NULL DEFAULT 0,   -- nonce bound into confirm tokens; confirming advances it
    legal_hold  INTEGER NOT NULL DEFAULT 0,   -- 1 = never purge consent records
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    status_at   TEXT    NOT NULL,             -- when status last changed
    erased_at   TEXT
);

CREATE TABLE subscriber_tags (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    tag           TEXT    NOT NULL,
    PRIMARY KEY (subscriber_id, tag)
) WITHOUT ROWID;

CREATE INDEX subscriber_tags_tag ON subscriber_tags (tag, subscriber_id);

CREATE TABLE memberships (
    list_id       INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    subscribed    INTEGER NOT NULL,           -- 1 subscribed, 0 left this list
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (list_id, subscriber_id)
) WITHOUT ROWID;

CREATE INDEX memberships_subscriber ON memberships (subscriber_id);

CREATE TABLE consents (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    consented_at  TEXT    NOT NULL,
    method        TEXT    NOT NULL CHECK (method IN ('double_opt_in', 'import', 'api')),
    form_version  TEXT    NOT NULL DEFAULT '',
    text_sha256   TEXT    NOT NULL DEFAULT '',  -- hex SHA-256 of the text shown
    ip            TEXT    NOT NULL DEFAULT '',
    user_agent    TEXT    NOT NULL DEFAULT '',
    lists         TEXT    NOT NULL DEFAULT '',  -- comma-separated list keys consented to
    prefs         TEXT    NOT NULL DEFAULT '',  -- audience.Prefs.Key() consented to
    recorded_at   TEXT    NOT NULL
);

CREATE INDEX consents_subscriber ON consents (subscriber_id);

CREATE TABLE status_history (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    at            TEXT    NOT NULL,
    from_status   TEXT    NOT NULL DEFAULT '',  -- '' when the subscriber was created
    to_status     TEXT    NOT NULL,
    list          TEXT    NOT NULL DEFAULT '',  -- list key for a change to one list
    cause         TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX status_history_subscriber ON status_history (subscriber_id);

CREATE TABLE suppressions (
    hash       BLOB NOT NULL PRIMARY KEY,     -- HMAC-SHA256(derived key, normalised address)
    key_id     TEXT NOT NULL,
    reason     TEXT NOT NULL CHECK (reason IN ('erased', 'bounced', 'complained')),
    created_at TEXT NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE suppressions;
DROP TABLE status_history;
DROP TABLE consents;
DROP TABLE memberships;
DROP TABLE subscriber_tags;
DROP TABLE subscribers;
DROP TABLE lists;
