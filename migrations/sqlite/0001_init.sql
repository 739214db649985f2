-- campaignd schema for SQLite. Timestamps are INTEGER unix seconds (UTC); booleans are 0/1.

CREATE TABLE IF NOT EXISTS customers (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT,
    phone         TEXT,
    first_name    TEXT,
    last_name     TEXT,
    country       TEXT,
    city          TEXT,
    postal_code   TEXT,
    birth_date    TEXT,
    gender        TEXT,
    created_at    INTEGER,
    consent_ads   INTEGER NOT NULL DEFAULT 0,
    consent_email INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS orders (
    id            TEXT PRIMARY KEY NOT NULL,
    customer_id   TEXT NOT NULL REFERENCES customers(id),
    placed_at     INTEGER NOT NULL,
    total         REAL NOT NULL,
    currency      TEXT,
    discount_code TEXT,
    free_shipping INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS orders_customer_placed ON orders(customer_id, placed_at, total, discount_code, free_shipping);

CREATE TABLE IF NOT EXISTS events (
    id          TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    kind        TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    properties  TEXT
);
CREATE INDEX IF NOT EXISTS events_customer_kind_time ON events(customer_id, kind, occurred_at);

CREATE TABLE IF NOT EXISTS suppressions (
    identifier_kind TEXT NOT NULL,
    identifier      TEXT NOT NULL,
    reason          TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (identifier_kind, identifier)
);

CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job         TEXT NOT NULL,
    target      TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT NOT NULL DEFAULT 'running',
    counts      TEXT NOT NULL DEFAULT '{}',
    error       TEXT
);
CREATE INDEX IF NOT EXISTS runs_job_started ON runs(job, started_at);

CREATE TABLE IF NOT EXISTS segments (
    name          TEXT PRIMARY KEY NOT NULL,
    description   TEXT,
    source        TEXT NOT NULL,
    compiled_sql  TEXT,
    size          INTEGER NOT NULL DEFAULT 0,
    last_run_id   INTEGER,
    last_joined   INTEGER NOT NULL DEFAULT 0,
    last_left     INTEGER NOT NULL DEFAULT 0,
    computed_at   INTEGER
);

CREATE TABLE IF NOT EXISTS segment_memberships (
    segment     TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    joined_at   INTEGER NOT NULL,
    PRIMARY KEY (segment, customer_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS segment_changes (
    run_id      INTEGER NOT NULL,
    segment     TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('joined', 'left')),
    at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS segment_changes_segment_run ON segment_changes(segment, run_id);

CREATE TABLE IF NOT EXISTS segment_sizes (
    segment TEXT NOT NULL,
    run_id  INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    size    INTEGER NOT NULL,
    PRIMARY KEY (segment, run_id)
);
