-- +goose Up
-- Upkeep of the automation's outboxes (issue 22): the webhook reconciler
-- and the trimming of the delivery log, and the durable list mail (the
-- welcome mail). Times are Unix milliseconds (UTC).

-- The Asynq task id of a delivery's latest queueing: webhook:<id>, or the
-- replay's own id. The reconciler looks for it in Redis and re-creates a
-- lost task under it.
ALTER TABLE webhook_deliveries ADD COLUMN task_id TEXT NOT NULL DEFAULT '';
-- The reconciler reads the pending deliveries, the trimmer the old
-- delivered ones and the old events.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (updated_at, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (updated_at) WHERE state = 'delivered';
CREATE INDEX webhook_events_created ON webhook_events (created_at) WHERE dispatched_at IS NOT NULL;

-- list_mail is the outbox of the mails to one reader of a list that are
-- not an issue (the welcome mail, queue/listmail.go): written before the
-- task is queued, marked sent once the relay accepted the mail, and
-- re-queued by the workers' reconciler if Redis lost the task. The payload
-- (the task's JSON, with the address) is dropped once the row is final.
CREATE TABLE list_mail (
    key           TEXT    PRIMARY KEY,   -- the message's key; its task id is message:<key>
    subscriber_id INTEGER NOT NULL,
    list          TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','sent','failed')),
    payload       BLOB,                  -- NULL once sent or failed
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX list_mail_pending ON list_mail (updated_at) WHERE state = 'pending';
CREATE INDEX list_mail_final ON list_mail (updated_at) WHERE state <> 'pending';

-- +goose Down
DROP TABLE list_mail;
DROP INDEX webhook_events_created;
DROP INDEX webhook_deliveries_delivered;
DROP INDEX webhook_deliveries_pending;
ALTER TABLE webhook_deliveries DROP COLUMN task_id;
