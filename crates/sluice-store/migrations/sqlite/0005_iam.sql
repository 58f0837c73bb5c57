-- Identities beyond the root: IAM users with a path and tags, customer-managed policies and
-- their attachments. (Sluice's own managed policies live in the server, not here.)
ALTER TABLE identities ADD COLUMN path TEXT NOT NULL DEFAULT '/';
-- JSON list of {"Key", "Value"}.
ALTER TABLE identities ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
CREATE UNIQUE INDEX identities_by_name ON identities (account_id, kind, name);
CREATE INDEX access_keys_by_identity ON access_keys (identity_id);

CREATE TABLE policies (
    policy_arn TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    path TEXT NOT NULL,
    document TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (account_id, policy_name)
);

CREATE TABLE policy_attachments (
    identity_id TEXT NOT NULL REFERENCES identities (identity_id),
    policy_arn TEXT NOT NULL,
    PRIMARY KEY (identity_id, policy_arn)
);
CREATE INDEX policy_attachments_by_policy ON policy_attachments (policy_arn);
