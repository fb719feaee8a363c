-- The choice (name, regions, topics) a returning reader made on the signup
-- form, kept until they confirm: an unsubscribed, bounced or complained
-- address that signs up again must not have its stored choice changed by
-- whoever typed the address, so the new choice waits here as JSON
-- ({"name": "...", "prefs": {"regions": [...], "topics": [...]}}) and
-- Store.Confirm applies it and empties the column. '' means none.

--
-- lists.skip_nothing: 1 leaves out of a send the readers whose chosen
-- sections all have nothing this month ("該当なし"); 0 (the default) sends
-- them a short copy that says so, with the issue's link.

-- +goose Up
ALTER TABLE subscribers ADD COLUMN pending_choice TEXT NOT NULL DEFAULT '';
ALTER TABLE lists ADD COLUMN skip_nothing INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE lists DROP COLUMN skip_nothing;
ALTER TABLE subscribers DROP COLUMN pending_choice;
