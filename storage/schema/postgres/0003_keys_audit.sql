-- flowwatch PostgreSQL schema, version 3: API keys of their own (a user holds one per login
-- and one issued key) and the audit log.

CREATE TABLE api_keys (
    hash       TEXT PRIMARY KEY,
    name       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (name, created_at);

INSERT INTO api_keys (hash, name, kind, created_at)
    SELECT api_key_hash, name, 'issued', 0 FROM users WHERE api_key_hash IS NOT NULL;
ALTER TABLE users DROP COLUMN api_key_hash;

-- Every change (who, what, when), read newest first.
CREATE TABLE audit_log (
    at     BIGINT NOT NULL,
    id     TEXT NOT NULL,
    who    TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail JSONB NOT NULL,
    PRIMARY KEY (at, id)
);
