-- flowwatch PostgreSQL schema, version 5: what operators do about alarms (SPEC §11).
-- Silences whole, as JSON; the flows acknowledged now (an acknowledgement is also written into
-- its event's body), dropped by the change that ends the episode.

CREATE TABLE silences (
    id   TEXT PRIMARY KEY,
    body JSONB NOT NULL
);

CREATE TABLE flow_acks (
    country TEXT NOT NULL,
    lob     TEXT NOT NULL,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    body    JSONB NOT NULL,
    PRIMARY KEY (country, lob, kind, name)
);

-- Incident messages published on NATS (so a restart does not send them again).
CREATE TABLE published_incidents (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL
);
