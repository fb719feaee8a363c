-- +goose Up
-- A subscriber's deliveries (their data export, the feedback loop's last
-- attempts) are found send by send along the primary key: sends are few
-- (one an issue), a seek each. The index on subscriber_id, which planning
-- wrote once per delivery, goes.
DROP INDEX deliveries_subscriber;

-- +goose Down
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);
