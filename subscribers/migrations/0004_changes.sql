-- +goose Up
-- subscriber_changes: a short log of the subscribers whose status, lists,
-- preferences, address or name changed, written by triggers so that no
-- path (web, CLI, import, feedback) can forget it. A running send reads it
-- every quarter of a second and re-reads only the changed readers of its
-- batch, so that an unsubscribe or a preference change takes effect for
-- every copy not yet handed to the relay (Store.ChangeMark and
-- Store.ChangedSince). Every thousandth entry trims the log to its last
-- 100,000 entries; a reader of the log that finds its mark trimmed away
-- re-reads everyone.
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
DROP TRIGGER subscriber_changes_trim;
DROP TRIGGER subscriber_changes_tag_gone;
DROP TRIGGER subscriber_changes_tag_added;
DROP TRIGGER subscriber_changes_membership_gone;
DROP TRIGGER subscriber_changes_membership;
DROP TRIGGER subscriber_changes_subscriber;
DROP TABLE subscriber_changes;
