-- Leases: one server at a time does what must be done once (the scheduler's loop). The epoch
-- grows with every new holder, so work started under an old epoch can be refused (fencing).
CREATE TABLE leases (
    name TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT COLLATE "C" NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL
);
