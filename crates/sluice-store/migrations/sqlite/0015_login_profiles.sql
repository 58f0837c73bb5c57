-- Console passwords (IAM's login profiles): a PBKDF2-HMAC-SHA256 hash with its salt and
-- iteration count, never the password. Failed sign-ins are counted here so that every server
-- sees them; five in a row lock the profile until locked_until.
CREATE TABLE login_profiles (
    identity_id TEXT PRIMARY KEY REFERENCES identities (identity_id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    password_reset_required INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT
);
