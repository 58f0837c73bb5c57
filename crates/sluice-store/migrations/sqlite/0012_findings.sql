-- Sensitive-data findings reported by task runners about a pipeline's outputs: the finding
-- (Macie's shape, which names objects and carries redacted samples) sealed with the pipeline's
-- data key, so deleting the pipeline shreds them; a few columns in clear for listing.
CREATE TABLE findings (
    finding_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    attempt_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    severity INTEGER NOT NULL,
    finding_type TEXT NOT NULL,
    sealed_body BLOB NOT NULL
);
CREATE INDEX findings_by_account ON findings (account_id, created_at, finding_id);
CREATE INDEX findings_by_pipeline ON findings (pipeline_id, created_at, finding_id);
