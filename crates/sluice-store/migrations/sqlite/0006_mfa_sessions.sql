-- Virtual MFA devices (seed sealed by the server) and session credentials: temporary access keys
-- with the hash of their session token, an expiry, and when MFA was proven for them.
CREATE TABLE mfa_devices (
    serial_number TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    -- The user it is enabled for; NULL until enabled.
    identity_id TEXT REFERENCES identities (identity_id),
    sealed_seed BLOB NOT NULL,
    -- The last step whose code was accepted: a code is never accepted twice.
    last_step INTEGER NOT NULL DEFAULT -1,
    enabled_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX mfa_devices_by_identity ON mfa_devices (identity_id);

ALTER TABLE access_keys ADD COLUMN session_token_hash TEXT;
ALTER TABLE access_keys ADD COLUMN expires_at TEXT;
ALTER TABLE access_keys ADD COLUMN mfa_at TEXT;
