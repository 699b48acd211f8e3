-- What hosts recorded on their own (their outbox, `l4d2-agent events`), as the app read it:
-- the event as the host gave it (JSON), and whether someone dismissed it.
CREATE TABLE host_events (
    id INTEGER PRIMARY KEY,
    host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    dismissed INTEGER NOT NULL DEFAULT 0,
    UNIQUE (host_id, seq)
);
-- The newest event read from each host, how many it dropped before they were read, and
-- how long it keeps them.
ALTER TABLE hosts ADD COLUMN events_seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN events_missed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN events_retention_days INTEGER;
