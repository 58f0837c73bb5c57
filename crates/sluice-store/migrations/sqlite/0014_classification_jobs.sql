-- Classification jobs: scans of a pipeline's S3DataNode locations for sensitive data, once or on
-- a schedule (Macie's daily / weekly / monthly). What names objects (the locations, the problems
-- met, the incremental watermark) is sealed with the pipeline's data key; counts are in clear.
-- A server runs a job while it holds the claim (claimed_by until claimed_until), so several
-- servers never run one job twice at once.
CREATE TABLE classification_jobs (
    job_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    name TEXT NOT NULL,
    job_type TEXT NOT NULL,
    schedule TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    next_run_at TEXT,
    last_run_started_at TEXT,
    last_run_finished_at TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    objects_scanned INTEGER NOT NULL DEFAULT 0,
    bytes_scanned INTEGER NOT NULL DEFAULT 0,
    findings INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until TEXT,
    sealed_state BLOB NOT NULL
);
CREATE INDEX classification_jobs_by_account ON classification_jobs (account_id, created_at, job_id);
CREATE INDEX classification_jobs_due ON classification_jobs (status, next_run_at);
