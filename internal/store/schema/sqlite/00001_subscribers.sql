-- Subscribers (SQLite): readers, lists, memberships, preferences, consent
-- records, status history, the suppression list, feedback events, the
-- change log and the public-id key. The same tables as
-- ../postgres/00001_subscribers.sql.
--
-- Times are UTC text "YYYY-MM-DDTHH:MM:SS.ffffffZ" (fixed width, so text
-- order is time order).

-- +goose Up
CREATE TABLE lists (
    id         INTEGER PRIMARY KEY,
    key        TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    skip_nothing INTEGER NOT NULL DEFAULT 0 -- 1 = readers with nothing this month get no copy (else a short one)
);

INSERT INTO lists (key, name, created_at)
VALUES ('monthly', 'AI政策動向 (monthly)', strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));

-- A subscriber's public id (in tokens and URLs) is not stored: it is
-- derived from id under the key in store_keys (subscribers/publicid.go),
-- which keeps a random key out of an index.
CREATE TABLE subscribers (
    id          INTEGER PRIMARY KEY,
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
    erased_at   TEXT,
    pending_choice TEXT NOT NULL DEFAULT ''   -- a returning reader's signup choice (JSON), applied when they confirm
);

CREATE TABLE store_keys (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

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

-- Feedback events: what bounce (RFC 3464) and complaint (RFC 5965) reports
-- said, one row per recipient of a report, and what Tayori did about it.
-- No addresses: the recipient's domain only, and diagnostics with their
-- local parts masked.
CREATE TABLE feedback_events (
    id            INTEGER PRIMARY KEY,
    report_key    TEXT    NOT NULL,             -- hex SHA-256 of the report's Message-ID and From (or of its bytes)
    seq           INTEGER NOT NULL,             -- the recipient's place in the report (0 for a complaint)
    received_at   TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('hard', 'soft', 'policy', 'complaint', 'delayed', 'delivered', 'unknown')),
    status        TEXT    NOT NULL DEFAULT '',  -- enhanced status code (5.1.1) or ARF feedback type (abuse)
    auth          INTEGER NOT NULL DEFAULT 0,   -- 1: an authentication refusal (5.7.26, 5.7.515, ...)
    domain        TEXT    NOT NULL DEFAULT '',  -- the recipient's domain, or the reporting provider's
    detail        TEXT    NOT NULL DEFAULT '',  -- the diagnostic, local parts of addresses masked
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,  -- NULL: not matched
    send_id       INTEGER,                      -- the send of the copy, when known
    matched_by    TEXT    NOT NULL DEFAULT '',  -- return-path, message-id, cfbl, address or ''
    action        TEXT    NOT NULL DEFAULT '',  -- what was done
    UNIQUE (report_key, seq)
);

CREATE INDEX feedback_events_received ON feedback_events (received_at);
CREATE INDEX feedback_events_subscriber ON feedback_events (subscriber_id, send_id) WHERE subscriber_id IS NOT NULL;

-- subscriber_changes: a short log of the subscribers whose status, lists,
-- preferences, address or name changed, written by triggers so that no
-- path (web, CLI, import, feedback) can forget it. A running send reads it
-- every quarter of a second and re-reads only the changed readers of its
-- batch (Store.ChangeMark and Store.ChangedSince). Every thousandth entry
-- trims the log to its last 100,000 entries; a reader of the log that
-- finds its mark trimmed away re-reads everyone.
CREATE TABLE subscriber_changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id INTEGER NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER subscriber_changes_subscriber AFTER UPDATE OF status, regions, topics, email, name ON subscribers
WHEN old.status IS NOT new.status OR old.regions IS NOT new.regions OR old.topics IS NOT new.topics
  OR old.email IS NOT new.email OR old.name IS NOT new.name
BEGIN
    INSERT INTO subscriber_changes (subscriber_id) VALUES (new.id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER subscriber_changes_membership AFTER UPDATE OF subscribed ON memberships
WHEN old.subscribed IS NOT new.subscribed
BEGIN
    INSERT INTO subscriber_changes (subscriber_id) VALUES (new.subscriber_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER subscriber_changes_membership_gone AFTER DELETE ON memberships
BEGIN
    INSERT INTO subscriber_changes (subscriber_id) VALUES (old.subscriber_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER subscriber_changes_tag_added AFTER INSERT ON subscriber_tags
WHEN (SELECT updated_at != created_at FROM subscribers WHERE id = new.subscriber_id) -- not a new subscriber's tags
BEGIN
    INSERT INTO subscriber_changes (subscriber_id) VALUES (new.subscriber_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER subscriber_changes_tag_gone AFTER DELETE ON subscriber_tags
BEGIN
    INSERT INTO subscriber_changes (subscriber_id) VALUES (old.subscriber_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER subscriber_changes_trim AFTER INSERT ON subscriber_changes
WHEN new.seq % 1000 = 0
BEGIN
    DELETE FROM subscriber_changes WHERE seq <= new.seq - 100000;
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE subscriber_changes;
DROP TABLE feedback_events;
DROP TABLE suppressions;
DROP TABLE status_history;
DROP TABLE consents;
DROP TABLE memberships;
DROP TABLE subscriber_tags;
DROP TABLE store_keys;
DROP TABLE subscribers;
DROP TABLE lists;
