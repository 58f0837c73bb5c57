-- Credentials for external systems a role carries (an S3 key, a database password), sealed by
-- the server under the KEK and handed only to tasks of pipelines the role trusts.
CREATE TABLE role_secrets (
    identity_id TEXT NOT NULL REFERENCES identities (identity_id),
    name TEXT NOT NULL,
    sealed_value BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (identity_id, name)
);
