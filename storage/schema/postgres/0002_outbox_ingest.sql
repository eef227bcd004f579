-- flowwatch PostgreSQL schema, version 2: the alarm outbox and exactly-once ingest positions.

-- Alarms not yet published (read oldest first by the event's time).
CREATE TABLE outbox (
    id TEXT PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE
);

-- Per ingest source (one partition of the ingest stream), the last batch applied.
CREATE TABLE ingest_positions (
    source   TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
