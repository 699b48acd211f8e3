-- Which hosts have an overlay's content, since when, and whether a newer version waits
-- there for its servers' next start (a fill while one of them ran).
CREATE TABLE overlay_hosts (
    overlay_id INTEGER NOT NULL REFERENCES overlays (id) ON DELETE CASCADE,
    host_id    INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    filled_ms  INTEGER NOT NULL,
    pending    INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1)),
    PRIMARY KEY (overlay_id, host_id)
) STRICT;
