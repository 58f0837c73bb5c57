-- The audit trail. Each record is CloudTrail-shaped JSON plus its place in a hash chain:
-- hash = SHA-256(previous_hash || record). Columns beside `record` exist for LookupEvents.
CREATE TABLE audit_records (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    event_time TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_source TEXT NOT NULL,
    username TEXT,
    access_key_id TEXT,
    resource_name TEXT,
    resource_type TEXT,
    read_only INTEGER NOT NULL,
    record TEXT NOT NULL,
    previous_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_records_time ON audit_records (event_time);

-- Delivered log files: which records each holds and the SHA-256 of its uncompressed content.
CREATE TABLE audit_files (
    file_id INTEGER PRIMARY KEY AUTOINCREMENT,
    object_key TEXT NOT NULL UNIQUE,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    oldest_event_time TEXT NOT NULL,
    newest_event_time TEXT NOT NULL,
    delivered_at TEXT NOT NULL,
    digest_id INTEGER
);

-- Signed digests, each naming the previous one (CloudTrail's chain).
CREATE TABLE audit_digests (
    digest_id INTEGER PRIMARY KEY AUTOINCREMENT,
    object_key TEXT NOT NULL UNIQUE,
    start_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- Where verification starts after retention pruned older records: the last pruned record's hash.
CREATE TABLE audit_anchor (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
