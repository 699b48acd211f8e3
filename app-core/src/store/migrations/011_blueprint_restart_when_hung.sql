-- Whether a blueprint's servers are restarted by their host when they hang (their process
-- runs, but they answer no query); they are reported either way.
ALTER TABLE blueprints ADD COLUMN restart_when_hung INTEGER NOT NULL DEFAULT 0;
