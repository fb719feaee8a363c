-- +goose Up
-- The audit log: what editors did in the console and the API, newest
-- last. The editor is kept by name (as typed, for a failed sign-in), so
-- that the log reads the same after an editor is removed. Times are Unix
-- milliseconds (UTC). Plain SQL on purpose: no engine-specific functions.
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
