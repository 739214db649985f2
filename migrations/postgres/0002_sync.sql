-- Audience sync: remote audiences, the ledger of what each platform holds, the per-run desired state,
-- and rows platforms rejected.

CREATE TABLE IF NOT EXISTS destination_audiences (
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    remote_id     TEXT NOT NULL,
    needs_replace BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (destination, audience_name)
);

CREATE TABLE IF NOT EXISTS sync_ledger (
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    payload       TEXT NOT NULL,
    synced_at     BIGINT NOT NULL,
    run_id        BIGINT NOT NULL,
    PRIMARY KEY (destination, audience_name, customer_id)
);

CREATE TABLE IF NOT EXISTS sync_staging (
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    payload       TEXT NOT NULL,
    PRIMARY KEY (destination, audience_name, customer_id)
);

CREATE TABLE IF NOT EXISTS sync_rejections (
    run_id        BIGINT NOT NULL,
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    action        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_rejections_run ON sync_rejections(run_id);
