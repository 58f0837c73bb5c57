-- The long-term key a session was got with: deactivating or deleting it ends its sessions.
ALTER TABLE access_keys ADD COLUMN parent_key_id TEXT;
CREATE INDEX access_keys_by_parent ON access_keys (parent_key_id);
