-- +goose Up
-- The welcome mail of each list (package welcome): sent once a reader
-- confirms, unless the editor turned it off. A list without a row uses
-- the default template, on. Times are Unix milliseconds (UTC).
CREATE TABLE welcome_templates (
    list       TEXT    PRIMARY KEY,
    enabled    INTEGER NOT NULL,
    subject    TEXT    NOT NULL,
    body       TEXT    NOT NULL,   -- text/template source of the plain-text body
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE welcome_templates;
