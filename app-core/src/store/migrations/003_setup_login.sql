-- How a host's set-up logged in, when the admin asked the app to remember it: the method
-- and, for a key file, its path (JSON, never a secret; those are in the OS keyring). With
-- it the app redeploys an outdated agent by itself.
ALTER TABLE hosts ADD COLUMN setup_login TEXT;
