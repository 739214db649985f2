-- Platform-reported audience sizes (issue 9, match rates): what each platform says it matched of an
-- audience campaignd syncs, pulled with the metrics job, one row per (day, destination, audience); a
-- second pull on the same day replaces that day's row. day = unix seconds of 00:00 UTC. lower/upper are
-- the platform's band (equal when it reports one number), match_rate_percent its own rate, NULL = not
-- reported.
CREATE TABLE IF NOT EXISTS audience_sizes (
    day                BIGINT NOT NULL,
    destination        TEXT NOT NULL,
    audience_name      TEXT NOT NULL,
    segment            TEXT NOT NULL,
    remote_id          TEXT NOT NULL,
    lower_bound        BIGINT,
    upper_bound        BIGINT,
    match_rate_percent DOUBLE PRECISION,
    pulled_at          BIGINT NOT NULL,
    run_id             BIGINT,
    PRIMARY KEY (day, destination, audience_name)
);
CREATE INDEX IF NOT EXISTS audience_sizes_latest ON audience_sizes(destination, audience_name, day);
