-- Roles: identities of kind 'Role' (path and tags as for users) with a trust policy saying which
-- pipelines may use them; their policies attach as a user's do (policy_attachments).
CREATE TABLE roles (
    identity_id TEXT PRIMARY KEY REFERENCES identities (identity_id),
    trust_policy TEXT NOT NULL,
    description TEXT,
    max_session_seconds INTEGER NOT NULL DEFAULT 3600
);

-- A role session handed to a task is bound to its attempt and ends with it.
ALTER TABLE access_keys ADD COLUMN task_pipeline_id TEXT;
ALTER TABLE access_keys ADD COLUMN task_attempt_id TEXT;
CREATE INDEX access_keys_by_attempt ON access_keys (task_pipeline_id, task_attempt_id);
