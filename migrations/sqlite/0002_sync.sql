-- Audience sync: remote audiences, the ledger of what each platform holds, and rows platforms rejected.

CREATE TABLE IF NOT EXISTS destination_audiences (
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    remote_id     TEXT NOT NULL,
    needs_replace INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (destination, audience_name)
);

CREATE TABLE IF NOT EXISTS sync_ledger (
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    payload       TEXT NOT NULL,
    synced_at     INTEGER NOT NULL,
    run_id        INTEGER NOT NULL,
    PRIMARY KEY (destination, audience_name, customer_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS sync_rejections (
    run_id        INTEGER NOT NULL,
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    action        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_rejections_run ON sync_rejections(run_id);
