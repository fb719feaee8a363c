-- +goose Up
-- The composer: every save of an issue is a revision (its source as the
-- editor's Markdown, or the plain text as uploaded), numbered per issue
-- from 1, with its author and time. web_issues keeps the issue as sent
-- and shown: head is the newest revision, valid_revision the newest one
-- that parses (its issue is issue_json), sent_revision the one a send
-- took (0: never sent; the issue is then locked and later revisions are
-- corrections). Pending drafts are work posted after a session expired,
-- kept until the editor signs in again. Plain SQL on purpose: no
-- engine-specific functions.
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
ALTER TABLE web_issues ADD COLUMN head INTEGER NOT NULL DEFAULT 0;
ALTER TABLE web_issues ADD COLUMN valid_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE web_issues ADD COLUMN sent_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE web_issues ADD COLUMN sent_at INTEGER;
-- Issues uploaded before revisions existed become revision 1.
INSERT INTO web_revisions (slug, number, kind, base, author, note, source_name, source, valid, created_at)
    SELECT slug, 1, 'upload', 0, uploaded_by, '', source_name, source, 1, updated_at FROM web_issues;
UPDATE web_issues SET head = 1, valid_revision = 1;
CREATE TABLE web_pending (
    id_hash    BLOB    PRIMARY KEY,           -- SHA-256 of the cookie value
    slug       TEXT    NOT NULL,
    form       BLOB    NOT NULL,              -- the posted form, URL-encoded
    created_at INTEGER NOT NULL
);
CREATE INDEX web_pending_created ON web_pending (created_at);

-- +goose Down
DROP TABLE web_pending;
ALTER TABLE web_issues DROP COLUMN sent_at;
ALTER TABLE web_issues DROP COLUMN sent_revision;
ALTER TABLE web_issues DROP COLUMN valid_revision;
ALTER TABLE web_issues DROP COLUMN head;
DROP TABLE web_revisions;
