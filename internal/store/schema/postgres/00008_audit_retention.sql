-- +goose Up
-- The audit log keeps TAYORI_AUDIT_DAYS days (default 400): the workers
-- delete older entries by their time, which this index finds.
CREATE INDEX web_audit_at ON web_audit (at);

-- +goose Down
DROP INDEX web_audit_at;
