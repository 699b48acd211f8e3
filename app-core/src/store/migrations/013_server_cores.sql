-- The physical cores of its host a server is pinned to (JSON array of core numbers; [] for
-- none). A server's own, beside its ports: two servers of one blueprint want different cores.
ALTER TABLE servers ADD COLUMN cores TEXT NOT NULL DEFAULT '[]';
