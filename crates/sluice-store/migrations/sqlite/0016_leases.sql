-- Leases: one server at a time does what must be done once (the scheduler's loop). The epoch
-- grows with every new holder, so work started under an old epoch can be refused (fencing).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    expires_at TEXT NOT NULL
);
