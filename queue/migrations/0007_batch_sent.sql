-- +goose Up
-- Copies accepted on their first attempt are recorded per batch run, not
-- per reader: each group commit appends one batch_sent row per batch with
-- the group's accepted copies of that batch, as a JSON array of
-- [subscriber_id, reply]. Rewriting each reader's deliveries row after its
-- copy went was the largest cost of recording an outcome (the row's seek,
-- its rewrite, its page in the WAL at every commit); an appended row per
-- batch and commit is a fraction of it.
--
-- A reader's delivery is then its deliveries row overridden by its entry in
-- batch_sent, if any: the entry means "sent, with this reply, at this time,
-- after one more attempt than the row says". Only rows claimed unattempted
-- (status queued, attempts 0) get entries, so such a row is queued, or
-- cancelled when the editor cancelled while its copy was in flight.
-- Failures, retries and retried copies still update their rows.
-- delivery_state reads a delivery as it stands; TestStatusQueriesUseIndexes
-- checks that it seeks by key.
CREATE TABLE batch_sent (
    send_id INTEGER NOT NULL REFERENCES sends (id) ON DELETE CASCADE,
    batch   INTEGER NOT NULL,
    n       INTEGER NOT NULL,   -- entries in sent
    at      INTEGER NOT NULL,   -- commit time, Unix ms
    sent    TEXT    NOT NULL    -- [[subscriber_id, reply], ...]
);
-- n and at in the index: a send's counts (sum of n) and its copies sent in
-- a time window read the index alone.
CREATE INDEX batch_sent_batch ON batch_sent (send_id, batch, n, at);

CREATE VIEW sent_copies AS
SELECT bs.send_id, bs.batch, j.value ->> 0 AS subscriber_id, j.value ->> 1 AS reply, bs.at
  FROM batch_sent bs, json_each(bs.sent) j;

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

-- cancel_mark: the highest batch_sent rowid when the send was cancelled.
-- The cancel leaves the rows of copies already in batch_sent alone; only
-- copies recorded after it (a higher rowid: copies in flight) can have
-- rows it marked cancelled, and the counts look for those among them only.
ALTER TABLE sends ADD COLUMN cancel_mark INTEGER NOT NULL DEFAULT 0;

-- +goose Down
UPDATE deliveries SET status = 'sent', permanent = 0, attempts = attempts + 1, reply = e.reply, updated_at = e.at
  FROM sent_copies e
 WHERE e.send_id = deliveries.send_id AND e.subscriber_id = deliveries.subscriber_id;
DROP VIEW delivery_state;
DROP VIEW sent_copies;
DROP TABLE batch_sent;
ALTER TABLE sends DROP COLUMN cancel_mark;
