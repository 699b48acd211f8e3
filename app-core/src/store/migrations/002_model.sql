-- The app's model. Times are UNIX milliseconds (UTC). Secrets are never stored here: rows
-- that need one hold only whether it exists; the secret itself is in the OS keyring, keyed
-- by the row's id.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL COLLATE NOCASE UNIQUE,
    -- argon2id PHC string: a one-way hash with its salt and parameters.
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL CHECK (is_admin IN (0, 1)),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_ms    INTEGER NOT NULL
) STRICT;

-- Failed logins, for rate limiting per username and overall. Old rows are pruned.
CREATE TABLE login_failures (
    id       INTEGER PRIMARY KEY,
    username TEXT NOT NULL COLLATE NOCASE,
    at_ms    INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_by_username ON login_failures (username, at_ms);
CREATE INDEX login_failures_by_time ON login_failures (at_ms);

-- Hosts are shared by all users of this install and managed by admins.
CREATE TABLE hosts (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL COLLATE NOCASE UNIQUE,
    address        TEXT NOT NULL,
    port           INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    -- The account with sudo used for set-up; afterwards the app logs in as left4me.
    admin_user     TEXT NOT NULL,
    -- The confirmed host key, OpenSSH public key format; NULL until the user confirms it.
    host_key       TEXT,
    -- new | ready
    state          TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'ready')),
    -- JSON facts read from the host: OS, kernel, CPU, memory, disk, installed build.
    facts          TEXT,
    created_ms     INTEGER NOT NULL,
    UNIQUE (address, port)
) STRICT;

-- Overlays: global (owner_id NULL, managed by admins) or owned by one user.
CREATE TABLE overlays (
    id          INTEGER PRIMARY KEY,
    owner_id    INTEGER REFERENCES users (id) ON DELETE RESTRICT,
    name        TEXT NOT NULL,
    -- empty | workshop | script | upload
    kind        TEXT NOT NULL CHECK (kind IN ('empty', 'workshop', 'script', 'upload')),
    -- JSON: what fills the overlay (workshop ids, the script's text, the upload's summary).
    source      TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX overlays_global_name ON overlays (name) WHERE owner_id IS NULL;
CREATE UNIQUE INDEX overlays_owned_name ON overlays (owner_id, name) WHERE owner_id IS NOT NULL;

CREATE TABLE blueprints (
    id          INTEGER PRIMARY KEY,
    owner_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    name        TEXT NOT NULL,
    -- JSON launch parameters (map, max_players, tickrate, flags) and cvars.
    launch      TEXT NOT NULL,
    cvars       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    UNIQUE (owner_id, name)
) STRICT;

-- A blueprint's overlays, top first.
CREATE TABLE blueprint_overlays (
    blueprint_id INTEGER NOT NULL REFERENCES blueprints (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    overlay_id   INTEGER NOT NULL REFERENCES overlays (id) ON DELETE RESTRICT,
    PRIMARY KEY (blueprint_id, position),
    UNIQUE (blueprint_id, overlay_id)
) STRICT;
CREATE INDEX blueprint_overlays_by_overlay ON blueprint_overlays (overlay_id);

CREATE TABLE servers (
    id               INTEGER PRIMARY KEY,
    owner_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    host_id          INTEGER NOT NULL REFERENCES hosts (id) ON DELETE RESTRICT,
    blueprint_id     INTEGER NOT NULL REFERENCES blueprints (id) ON DELETE RESTRICT,
    name             TEXT NOT NULL,
    port             INTEGER NOT NULL CHECK (port BETWEEN 1024 AND 65535),
    -- The spec (YAML) the host last initialised the server with; NULL: never. The next
    -- start or restart renders the blueprint again, so edits reach the host then.
    applied_spec     TEXT,
    created_ms       INTEGER NOT NULL,
    UNIQUE (host_id, name),
    UNIQUE (host_id, port)
) STRICT;
CREATE INDEX servers_by_blueprint ON servers (blueprint_id);
CREATE INDEX servers_by_owner ON servers (owner_id);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    -- Who asked for it; NULL for the app's own jobs.
    owner_id    INTEGER REFERENCES users (id) ON DELETE RESTRICT,
    kind        TEXT NOT NULL,
    host_id     INTEGER REFERENCES hosts (id) ON DELETE SET NULL,
    server_id   INTEGER REFERENCES servers (id) ON DELETE SET NULL,
    -- What the job acted on, in words; kept when the host or server is gone.
    target      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN
                    ('queued', 'running', 'succeeded', 'failed', 'interrupted', 'cancelled')),
    created_ms  INTEGER NOT NULL,
    started_ms  INTEGER,
    finished_ms INTEGER,
    exit_code   INTEGER,
    error       TEXT
) STRICT;
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_server ON jobs (server_id, id);
CREATE INDEX jobs_by_host ON jobs (host_id, id);

-- Everything a job printed or reported, in order.
CREATE TABLE job_events (
    id      INTEGER PRIMARY KEY,
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at_ms   INTEGER NOT NULL,
    -- line | progress | state
    kind    TEXT NOT NULL,
    -- JSON payload.
    data    TEXT NOT NULL
) STRICT;
CREATE INDEX job_events_by_job ON job_events (job_id, id);
