-- Per-pipeline data keys, each wrapped by the key-encryption key (KEK). Deleting the row
-- destroys the pipeline's data for good (crypto-shredding).
CREATE TABLE data_keys (
    pipeline_id TEXT PRIMARY KEY REFERENCES pipelines (pipeline_id),
    wrapped BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- Definition bodies become opaque bytes: format 1 is plaintext JSON (kept readable for data
-- written before encryption), format 2 is the JSON sealed with the pipeline's data key.
CREATE TABLE definition_versions_new (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (pipeline_id),
    version INTEGER NOT NULL,
    format_version INTEGER NOT NULL,
    body BLOB NOT NULL,
    errored INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (pipeline_id, version)
);
INSERT INTO definition_versions_new SELECT pipeline_id, version, format_version, CAST(body AS BLOB), errored, created_at FROM definition_versions;
DROP TABLE definition_versions;
ALTER TABLE definition_versions_new RENAME TO definition_versions;
