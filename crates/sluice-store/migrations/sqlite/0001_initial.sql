-- Identities and their access keys. The key secret is stored sealed: the server passes opaque
-- bytes (see sluice-server's secret vault), never plaintext of its own choosing.
CREATE TABLE identities (
    identity_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL REFERENCES identities (identity_id),
    sealed_secret BLOB NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT
);

CREATE TABLE pipelines (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline_id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    creator_identity_id TEXT NOT NULL,
    name TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    description TEXT,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deleted_at TEXT,
    latest_version INTEGER NOT NULL DEFAULT 0,
    active_version INTEGER
);

-- CreatePipeline is idempotent on (creator, name, uniqueId) among live pipelines.
CREATE UNIQUE INDEX pipelines_idempotency ON pipelines (creator_identity_id, name, unique_id) WHERE deleted_at IS NULL;
CREATE INDEX pipelines_listing ON pipelines (account_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE pipeline_tags (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (pipeline_id),
    position INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (pipeline_id, key)
);

-- Every PutPipelineDefinition is a new version; `format_version` says how `body` is encoded.
CREATE TABLE definition_versions (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (pipeline_id),
    version INTEGER NOT NULL,
    format_version INTEGER NOT NULL,
    body TEXT NOT NULL,
    errored INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (pipeline_id, version)
);
