-- The choice (name, regions, topics) a returning reader made on the signup
-- form, kept until they confirm: an unsubscribed, bounced or complained
-- address that signs up again must not have its stored choice changed by
-- whoever typed the address, so the new choice waits here as JSON
-- ({"name": "...", "prefs": {"regions": [...], "topics": [...]}}) and
-- Store.Confirm applies it and empties the column. '' means none.

-- +goose Up
ALTER TABLE subscribers ADD COLUMN pending_choice TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE subscribers DROP COLUMN pending_choice;
