-- Account-wide security settings.
CREATE TABLE account_settings (
    account_id TEXT PRIMARY KEY,
    -- Every human IAM user must use MFA-bearing session credentials.
    require_mfa INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
