-- Creative rotation and daily metrics (DESIGN §7-§8).
--
-- creative_rotations: which variant of a [[creative_set]] was live on which platform object for which
-- segment and destination, from when to when (unix seconds; live_until NULL = live now). At most one
-- open row per set. Metrics are attributed to the variant live at 12:00 UTC of each day.
CREATE TABLE IF NOT EXISTS creative_rotations (
    id          BIGSERIAL PRIMARY KEY,
    set_name    TEXT NOT NULL,
    segment     TEXT NOT NULL,
    destination TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    variant_id  TEXT NOT NULL,
    creative_id TEXT NOT NULL,
    live_from   BIGINT NOT NULL,
    live_until  BIGINT,
    run_id      BIGINT
);
CREATE INDEX IF NOT EXISTS creative_rotations_set ON creative_rotations(set_name, live_from);
CREATE INDEX IF NOT EXISTS creative_rotations_object ON creative_rotations(destination, object_id, live_from);
CREATE UNIQUE INDEX IF NOT EXISTS creative_rotations_one_live ON creative_rotations(set_name) WHERE live_until IS NULL;

-- Variants a set retired (CVR under retire_below_cvr after min_impressions); they never go live again.
CREATE TABLE IF NOT EXISTS creative_retirements (
    set_name    TEXT NOT NULL,
    variant_id  TEXT NOT NULL,
    retired_at  BIGINT NOT NULL,
    impressions BIGINT NOT NULL,
    clicks      BIGINT NOT NULL,
    conversions DOUBLE PRECISION NOT NULL,
    run_id      BIGINT,
    PRIMARY KEY (set_name, variant_id)
);

-- Daily delivery per (day, destination, segment, creative); a re-pull of a day replaces its rows.
-- day = unix seconds of 00:00 UTC; creative = the set's variant id live that day, else the platform's
-- creative id, else '' (unknown).
CREATE TABLE IF NOT EXISTS metrics_daily (
    day         BIGINT NOT NULL,
    destination TEXT NOT NULL,
    segment     TEXT NOT NULL,
    creative    TEXT NOT NULL,
    impressions BIGINT NOT NULL,
    clicks      BIGINT NOT NULL,
    conversions DOUBLE PRECISION NOT NULL,
    spend       DOUBLE PRECISION NOT NULL,
    revenue     DOUBLE PRECISION NOT NULL,
    currency    TEXT,
    pulled_at   BIGINT NOT NULL,
    run_id      BIGINT,
    PRIMARY KEY (day, destination, segment, creative)
);
CREATE INDEX IF NOT EXISTS metrics_daily_segment ON metrics_daily(segment, destination, creative);
