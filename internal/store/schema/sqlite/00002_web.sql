-- +goose Up
-- The web's tables: editors of the console, their sessions and API tokens,
-- issues and every revision of them, work posted after a session expired,
-- and the audit log. Times are Unix milliseconds (UTC). Secrets (session
-- ids, API tokens, pending-work cookies) are stored only as SHA-256 hashes.
CREATE TABLE web_editors (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,           -- argon2id, PHC string format
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE web_sessions (
    id_hash     BLOB    PRIMARY KEY,          -- SHA-256 of the cookie value
    editor_id   INTEGER NOT NULL REFERENCES web_editors (id) ON DELETE CASCADE,
    csrf        TEXT    NOT NULL,             -- per-session token for state-changing forms
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
CREATE TABLE web_api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    editor_id    INTEGER NOT NULL REFERENCES web_editors (id) ON DELETE CASCADE,
    label        TEXT    NOT NULL DEFAULT '',
    token_hash   BLOB    NOT NULL UNIQUE,     -- SHA-256 of the bearer token
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
-- An issue as previewed and sent: head is its newest revision,
-- valid_revision the newest one that parses (its issue is issue_json,
-- its source source), sent_revision the one a send took (0: never sent;
-- the issue is then locked and later revisions are corrections).
CREATE TABLE web_issues (
    slug           TEXT    PRIMARY KEY,
    title          TEXT    NOT NULL,
    source_name    TEXT    NOT NULL,
    source         BLOB    NOT NULL,          -- as uploaded or saved (Markdown or plain text)
    issue_json     BLOB    NOT NULL,          -- the parsed compose.Issue
    uploaded_by    TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    head           INTEGER NOT NULL DEFAULT 0,
    valid_revision INTEGER NOT NULL DEFAULT 0,
    sent_revision  INTEGER NOT NULL DEFAULT 0,
    sent_at        INTEGER
);
-- Every save of an issue, numbered per issue from 1.
CREATE TABLE web_revisions (
    slug        TEXT    NOT NULL,
    number      INTEGER NOT NULL,
    kind        TEXT    NOT NULL,             -- new, save, autosave, upload, restore, merge, correction
    base        INTEGER NOT NULL DEFAULT 0,   -- the revision the editor started from
    author      TEXT    NOT NULL DEFAULT '',
    note        TEXT    NOT NULL DEFAULT '',
    source_name TEXT    NOT NULL,
    source      BLOB    NOT NULL,
    form        BLOB,                         -- the composer's fields as posted (URL-encoded); NULL for uploads
    valid       INTEGER NOT NULL DEFAULT 1,   -- 1 when the source parses
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (slug, number)
);
-- Drafts posted after a session expired, kept until the editor signs in
-- again (a day at most).
CREATE TABLE web_pending (
    id_hash    BLOB    PRIMARY KEY,           -- SHA-256 of the cookie value
    slug       TEXT    NOT NULL,
    form       BLOB    NOT NULL,              -- the posted form, URL-encoded
    created_at INTEGER NOT NULL
);
CREATE INDEX web_pending_created ON web_pending (created_at);
-- The audit log: what editors did in the console and the API, newest
-- last. The editor is kept by name (as typed, for a failed sign-in), so
-- that the log reads the same after an editor is removed.
CREATE TABLE web_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    editor  TEXT    NOT NULL,
    action  TEXT    NOT NULL,   -- signin, signin_failed, upload, save, test_send, send, pause, resume, cancel, export, erase, unsubscribe, import, task_retry, task_archive, task_delete
    subject TEXT    NOT NULL DEFAULT '',  -- what it was done to: the issue's title, the list, the address
    detail  TEXT    NOT NULL DEFAULT ''   -- counts and the like, for people
);

-- +goose Down
DROP TABLE web_audit;
DROP TABLE web_pending;
DROP TABLE web_revisions;
DROP TABLE web_issues;
DROP TABLE web_api_tokens;
DROP TABLE web_sessions;
DROP TABLE web_editors;
