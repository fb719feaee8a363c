-- +goose Up
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

-- +goose Down
DROP TRIGGER sends_delete_deliveries ON sends;
DROP FUNCTION sends_delete_deliveries();
DROP TRIGGER deliveries_send_exists ON deliveries;
DROP FUNCTION deliveries_send_exists();
ALTER TABLE deliveries ADD CONSTRAINT deliveries_send_id_fkey FOREIGN KEY (send_id) REFERENCES sends (id) ON DELETE CASCADE;
