-- The scheduler's state (sluice-core's runtime module): activation facts on the pipeline, a
-- cursor per component, and instances and attempts. Times are UTC 'YYYY-MM-DDTHH:MM:SS' text, so
-- comparisons as text are comparisons in time. Attempts double as the task queue.
ALTER TABLE pipelines ADD COLUMN first_activation_at TEXT;
ALTER TABLE pipelines ADD COLUMN activated_at TEXT;
ALTER TABLE pipelines ADD COLUMN cancel_active INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pipelines ADD COLUMN wake_at TEXT;
CREATE INDEX pipelines_wake ON pipelines (wake_at) WHERE deleted_at IS NULL AND wake_at IS NOT NULL;

CREATE TABLE component_runs (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (pipeline_id),
    component_id TEXT NOT NULL,
    next_index INTEGER NOT NULL,
    exhausted INTEGER NOT NULL,
    paused INTEGER NOT NULL,
    health TEXT,
    health_instance TEXT,
    health_time TEXT,
    PRIMARY KEY (pipeline_id, component_id)
);

CREATE TABLE instances (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (pipeline_id),
    instance_id TEXT NOT NULL,
    component_id TEXT NOT NULL,
    scheduled_start TEXT NOT NULL,
    scheduled_end TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt_count INTEGER NOT NULL,
    tries_left INTEGER NOT NULL,
    actual_start TEXT,
    actual_end TEXT,
    head_attempt TEXT,
    created_at TEXT NOT NULL,
    late_fired INTEGER NOT NULL,
    rerun INTEGER NOT NULL,
    next_check_at TEXT,
    reason TEXT,
    PRIMARY KEY (pipeline_id, instance_id)
);

CREATE TABLE attempts (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (pipeline_id),
    attempt_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    component_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    status TEXT NOT NULL,
    queue TEXT NOT NULL,
    available_at TEXT NOT NULL,
    task_id TEXT UNIQUE,
    leased_at TEXT,
    acknowledged INTEGER NOT NULL,
    progress_at TEXT,
    actual_start TEXT,
    actual_end TEXT,
    hostname TEXT,
    outcome TEXT,
    reason TEXT,
    PRIMARY KEY (pipeline_id, attempt_id)
);
-- PollForTask: the oldest available attempt of a queue.
CREATE INDEX attempts_queue ON attempts (queue, available_at) WHERE status = 'WAITING_FOR_RUNNER';

-- What a task runner reported about an attempt (errorId, errorMessage, errorStackTrace): task
-- output can hold anything, so it is sealed with the pipeline's data key like the definition.
CREATE TABLE attempt_reports (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (pipeline_id),
    attempt_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (pipeline_id, attempt_id)
);

-- Notifications (SnsAlarm) waiting for delivery to their webhook: an outbox written in the
-- transaction that fired them, delivered after it commits. Subject and message are sealed with
-- the pipeline's data key.
CREATE TABLE notifications (
    notification_id TEXT PRIMARY KEY,
    pipeline_id TEXT NOT NULL REFERENCES pipelines (pipeline_id),
    topic_arn TEXT NOT NULL,
    sealed BLOB NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    delivered_at TEXT,
    last_error TEXT
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE delivered_at IS NULL;
