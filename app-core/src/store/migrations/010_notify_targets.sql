-- Where the hosts send notifications: the app keeps the list once (the URLs and tokens are
-- secrets, in the credential store) and gives it to every host. `endpoint` is the URL's
-- origin only, for lists.
CREATE TABLE notify_targets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    endpoint TEXT NOT NULL
);
-- Which version of the list each host has (app_meta's notify_revision when it was given).
ALTER TABLE hosts ADD COLUMN notify_pushed INTEGER NOT NULL DEFAULT 0;
