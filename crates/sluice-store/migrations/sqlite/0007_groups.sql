-- IAM groups: members inherit the policies attached to the group.
CREATE TABLE iam_groups (
    group_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    path TEXT NOT NULL,
    arn TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (account_id, group_name)
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES iam_groups (group_id),
    identity_id TEXT NOT NULL REFERENCES identities (identity_id),
    PRIMARY KEY (group_id, identity_id)
);
CREATE INDEX group_members_by_identity ON group_members (identity_id);

CREATE TABLE group_policy_attachments (
    group_id TEXT NOT NULL REFERENCES iam_groups (group_id),
    policy_arn TEXT NOT NULL,
    PRIMARY KEY (group_id, policy_arn)
);
CREATE INDEX group_policy_attachments_by_policy ON group_policy_attachments (policy_arn);
