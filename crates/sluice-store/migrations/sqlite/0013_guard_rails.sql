-- Personal data in names, descriptions and tags: warnings by default, errors when set.
ALTER TABLE account_settings ADD COLUMN guard_rails_as_errors INTEGER NOT NULL DEFAULT 0;
