-- +goose Up
-- A subscriber's deliveries, for their data export (GDPR Art. 15/20).
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);

-- +goose Down
DROP INDEX deliveries_subscriber;
