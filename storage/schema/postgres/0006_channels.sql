-- flowwatch PostgreSQL schema, version 6: notification channels (SPEC §12) and their delivery
-- queue. A delivery row stays after it is settled (state 'delivered' or 'failed', its body
-- dropped), so an alarm is queued for a channel once; attempts keep the latest per channel.

CREATE TABLE channels (
    name TEXT PRIMARY KEY,
    body JSONB NOT NULL
);

CREATE TABLE deliveries (
    channel    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    state      TEXT NOT NULL,
    next_at    BIGINT NOT NULL,
    body       JSONB,
    PRIMARY KEY (channel, event_id)
);

CREATE INDEX deliveries_queued ON deliveries (channel, event_time, event_id) WHERE state = 'queued';

CREATE TABLE delivery_attempts (
    channel TEXT NOT NULL,
    seq     BIGSERIAL,
    at_ms   BIGINT NOT NULL,
    body    JSONB NOT NULL,
    PRIMARY KEY (channel, at_ms, seq)
);
