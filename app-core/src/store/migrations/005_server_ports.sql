-- Each server's client and SourceTV ports (srcds's +clientport and +tv_port), handed out by
-- the app when the server is created so that no two servers on a host share one; NULL for
-- servers made before, whose host's agent picks them.
ALTER TABLE servers ADD COLUMN client_port INTEGER CHECK (client_port BETWEEN 1024 AND 65535);
ALTER TABLE servers ADD COLUMN tv_port INTEGER CHECK (tv_port BETWEEN 1024 AND 65535);
-- The address a host's servers bind (srcds's -ip); NULL for all of the host's addresses.
ALTER TABLE hosts ADD COLUMN bind_address TEXT;
