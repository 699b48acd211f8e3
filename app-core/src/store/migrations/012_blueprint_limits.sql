-- The resource limits a blueprint's servers run with (JSON of protocol::limits::Limits; {}
-- for systemd's defaults).
ALTER TABLE blueprints ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
