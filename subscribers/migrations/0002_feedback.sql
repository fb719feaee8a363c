-- Feedback events: what bounce (RFC 3464) and complaint (RFC 5965) reports
-- said, one row per recipient of a report, and what Tayori did about it.
-- Written by package feedback through Store.RecordFeedback; read by
-- `tayori feedback` and the send gate. No addresses: the recipient's
-- domain only, and diagnostics with their local parts masked.

-- +goose Up
CREATE TABLE feedback_events (
    id            INTEGER PRIMARY KEY,
    report_key    TEXT    NOT NULL,             -- hex SHA-256 of the report's Message-ID and From (or of its bytes)
    seq           INTEGER NOT NULL,             -- the recipient's place in the report (0 for a complaint)
    received_at   TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('hard', 'soft', 'policy', 'complaint', 'delayed', 'delivered', 'unknown')),
    status        TEXT    NOT NULL DEFAULT '',  -- enhanced status code (5.1.1) or ARF feedback type (abuse)
    auth          INTEGER NOT NULL DEFAULT 0,   -- 1: an authentication refusal (5.7.26, 5.7.515, ...)
    domain        TEXT    NOT NULL DEFAULT '',  -- the recipient's domain, or the reporting provider's
    detail        TEXT    NOT NULL DEFAULT '',  -- the diagnostic, local parts of addresses masked
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,  -- NULL: not matched
    send_id       INTEGER,                      -- the send of the copy, when known
    matched_by    TEXT    NOT NULL DEFAULT '',  -- return-path, message-id, cfbl, address or ''
    action        TEXT    NOT NULL DEFAULT '',  -- what was done
    UNIQUE (report_key, seq)
);

CREATE INDEX feedback_events_received ON feedback_events (received_at);
CREATE INDEX feedback_events_subscriber ON feedback_events (subscriber_id, send_id) WHERE subscriber_id IS NOT NULL;

-- +goose Down
DROP TABLE feedback_events;
