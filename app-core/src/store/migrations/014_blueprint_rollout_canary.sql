-- Whether a blueprint's servers go first (the canary) when a game update rolls across
-- their host.
ALTER TABLE blueprints ADD COLUMN rollout_canary INTEGER NOT NULL DEFAULT 0;
