-- +goose Up
-- Aggregate click counts (package clicks, docs/design/clicks.md): off by
-- default, per list. A send of a list that counts clicks records one row
-- per item link of its issue when it is created; the redirect /c/<token>
-- adds one to the row's count. Nothing here names a reader: no
-- subscriber id, public id, address, IP address, user agent or cookie,
-- and no row per click. Days are UTC "YYYY-MM-DD".
ALTER TABLE lists ADD COLUMN count_clicks smallint NOT NULL DEFAULT 0; -- 1 = item links go through the counting redirect

CREATE TABLE click_links (
    send_id       BIGINT  NOT NULL REFERENCES sends (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,            -- the link's number in the send (in the token)
    list          TEXT    NOT NULL,
    section       INTEGER NOT NULL,            -- index of the section in the issue
    section_title TEXT    NOT NULL DEFAULT '',
    item          INTEGER NOT NULL,            -- index of the item in the issue (all sections)
    link          INTEGER NOT NULL,            -- index of the link in the item
    headline      TEXT    NOT NULL DEFAULT '',
    url           TEXT    NOT NULL,
    clicks        BIGINT  NOT NULL DEFAULT 0,
    first_day     TEXT    NOT NULL DEFAULT '', -- day of the first counted click; '' none yet
    last_day      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (send_id, seq)
);

-- +goose Down
DROP TABLE click_links;
ALTER TABLE lists DROP COLUMN count_clicks;
