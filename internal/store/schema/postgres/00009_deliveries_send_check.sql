-- +goose Up
-- Two per-row triggers of the delivery hot path become per-statement ones.
--
-- A delivery row's send is checked once per statement instead of once per
-- row. The foreign key deliveries.send_id → sends ran one lookup of the
-- send (SELECT … FOR KEY SHARE) for each of the 2,500 rows a planning page
-- inserts, about half of the insert's time. Planning locks its send's row
-- (FOR NO KEY UPDATE, which a DELETE of the send waits for) before it
-- inserts, so the send cannot vanish meanwhile; the statement trigger
-- below refuses rows of a send that does not exist, and the delete
-- trigger does what ON DELETE CASCADE did.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_send_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION deliveries_send_exists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT send_id FROM new_rows) n
                WHERE NOT EXISTS (SELECT 1 FROM sends s WHERE s.id = n.send_id)) THEN
        RAISE foreign_key_violation USING MESSAGE = 'insert into deliveries: no such send';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER deliveries_send_exists AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_send_exists();

-- +goose StatementBegin
CREATE FUNCTION sends_delete_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM deliveries d USING old_rows o WHERE d.send_id = o.id;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER sends_delete_deliveries AFTER DELETE ON sends
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sends_delete_deliveries();

-- A group commit inserts one batch_sent row per batch run it records
-- (up to one per running batch); their counts now change once per
-- statement and send instead of once per row. The counts row is locked by
-- the group commit before it writes (FOR NO KEY UPDATE, as a cancel does),
-- so reading the cancelled count and the cancelled rows once for the
-- statement sees what each row's trigger saw.
-- +goose StatementBegin
CREATE FUNCTION batch_sent_counts_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE send_counts c SET
        first_sent = c.first_sent + t.n,
        raced = c.raced + CASE WHEN c.cancelled > 0 THEN
            (SELECT count(*) FROM new_rows r CROSS JOIN LATERAL jsonb_array_elements(r.sent) j(value)
               JOIN deliveries d ON d.send_id = r.send_id AND d.subscriber_id = (j.value ->> 0)::bigint
              WHERE r.send_id = c.send_id AND d.status = 'cancelled')
            ELSE 0 END
      FROM (SELECT send_id, sum(n) AS n FROM new_rows GROUP BY send_id) t
     WHERE c.send_id = t.send_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd
DROP TRIGGER batch_sent_counts ON batch_sent;
CREATE TRIGGER batch_sent_counts AFTER INSERT ON batch_sent
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION batch_sent_counts_stmt();

-- +goose Down
DROP TRIGGER batch_sent_counts ON batch_sent;
CREATE TRIGGER batch_sent_counts AFTER INSERT ON batch_sent FOR EACH ROW EXECUTE FUNCTION batch_sent_counts();
DROP FUNCTION batch_sent_counts_stmt();
DROP TRIGGER sends_delete_deliveries ON sends;
DROP FUNCTION sends_delete_deliveries();
DROP TRIGGER deliveries_send_exists ON deliveries;
DROP FUNCTION deliveries_send_exists();
ALTER TABLE deliveries ADD CONSTRAINT deliveries_send_id_fkey FOREIGN KEY (send_id) REFERENCES sends (id) ON DELETE CASCADE;
