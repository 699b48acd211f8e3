-- The servers on a host that run an older version of an overlay than their next start
-- would mount (a JSON array of their names), as the host's `overlay list` last said.
ALTER TABLE overlay_hosts ADD COLUMN behind TEXT NOT NULL DEFAULT '[]';
