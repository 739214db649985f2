-- Audience sync: remote audiences, the ledger of what each platform holds, and rows platforms rejected.

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

-- The sync merges the segment's members with the ledger in bytewise customer-id order; these indexes
-- serve that order whatever the database's default collation is.
CREATE INDEX IF NOT EXISTS sync_ledger_bytewise ON sync_ledger (destination, audience_name, customer_id COLLATE "C");
CREATE INDEX IF NOT EXISTS segment_memberships_bytewise ON segment_memberships (segment, customer_id COLLATE "C");
