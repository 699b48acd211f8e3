-- The code of the agent's error a job failed with (`steam_guard_code_needed`, …), for the
-- window to branch on; NULL when it succeeded or failed otherwise.
ALTER TABLE jobs ADD COLUMN error_code TEXT;
