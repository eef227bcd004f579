-- flowwatch PostgreSQL schema, version 1.
-- Range reads are per flow and time: every time series is clustered by its primary key
-- (flow_id, time), so a flow's range is one index range scan. Retention deletes per flow along
-- that key in batches.

CREATE TABLE flow_ids (
    id      BIGSERIAL PRIMARY KEY,
    country TEXT NOT NULL,
    lob     TEXT NOT NULL,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    UNIQUE (country, lob, kind, name)
);

CREATE TABLE traffic (
    flow_id BIGINT NOT NULL,
    second  BIGINT NOT NULL,
    bytes   BIGINT NOT NULL,
    records BIGINT NOT NULL,
    PRIMARY KEY (flow_id, second)
);

CREATE TABLE ticks (
    flow_id         BIGINT NOT NULL,
    start           BIGINT NOT NULL,
    "end"           BIGINT NOT NULL,
    actual          BIGINT NOT NULL,
    status          SMALLINT NOT NULL,
    expected        DOUBLE PRECISION,
    day_average     DOUBLE PRECISION,
    tick_difference DOUBLE PRECISION,
    day_difference  DOUBLE PRECISION,
    difference      DOUBLE PRECISION,
    evaluated_at    BIGINT NOT NULL,
    epoch           BIGINT NOT NULL,
    PRIMARY KEY (flow_id, start)
);

-- The latest tick of every flow: the dashboard reads this table whole.
CREATE TABLE flow_status (LIKE ticks, PRIMARY KEY (flow_id));

CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    time       BIGINT NOT NULL,
    country    TEXT NOT NULL,
    lob        TEXT NOT NULL,
    new_status SMALLINT NOT NULL,
    body       JSONB NOT NULL
);
CREATE INDEX events_by_time ON events (time DESC, id DESC);

CREATE TABLE flow_registry (
    flow_id    BIGINT PRIMARY KEY,
    first_seen BIGINT NOT NULL,
    partition  INTEGER NOT NULL
);

CREATE TABLE config_versions (
    version  BIGINT PRIMARY KEY,
    document JSONB NOT NULL,
    saved_at BIGINT NOT NULL,
    author   TEXT NOT NULL
);

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT,
    api_key_hash  TEXT UNIQUE
);
