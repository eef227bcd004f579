-- flowwatch PostgreSQL schema, version 4: the adaptive detector's band of a tick (SPEC §10),
-- NULL for the seed mode's ticks and for those stored before.

ALTER TABLE ticks
    ADD COLUMN band_lower        DOUBLE PRECISION,
    ADD COLUMN band_outage_below DOUBLE PRECISION,
    ADD COLUMN band_evidence     DOUBLE PRECISION,
    ADD COLUMN band_spread       DOUBLE PRECISION;
ALTER TABLE flow_status
    ADD COLUMN band_lower        DOUBLE PRECISION,
    ADD COLUMN band_outage_below DOUBLE PRECISION,
    ADD COLUMN band_evidence     DOUBLE PRECISION,
    ADD COLUMN band_spread       DOUBLE PRECISION;
