-- +goose Up
-- Editors of the web console, their sessions and API tokens, and the issues
-- they uploaded. Times are Unix milliseconds (UTC). Secrets (session ids,
-- API tokens) are stored only as SHA-256 hashes.
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
CREATE TABLE web_issues (
    slug        TEXT    PRIMARY KEY,
    title       TEXT    NOT NULL,
    source_name TEXT    NOT NULL,
    source      BLOB    NOT NULL,             -- as uploaded (Markdown or plain text)
    issue_json  BLOB    NOT NULL,             -- the parsed compose.Issue
    uploaded_by TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE web_issues;
DROP TABLE web_api_tokens;
DROP TABLE web_sessions;
DROP TABLE web_editors;
