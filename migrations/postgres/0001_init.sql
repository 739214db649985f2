-- campaignd schema for Postgres: the same tables as the SQLite set. The shop's input tables use native
-- types (TIMESTAMPTZ, BOOLEAN, NUMERIC); campaignd's own bookkeeping keeps unix seconds (BIGINT) like SQLite.

CREATE TABLE IF NOT EXISTS customers (
    id            TEXT PRIMARY KEY,
    email         TEXT,
    phone         TEXT,
    first_name    TEXT,
    last_name     TEXT,
    country       TEXT,
    city          TEXT,
    postal_code   TEXT,
    birth_date    DATE,
    gender        TEXT,
    created_at    TIMESTAMPTZ,
    consent_ads   BOOLEAN NOT NULL DEFAULT FALSE,
    consent_email BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE IF NOT EXISTS orders (
    id            TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL REFERENCES customers(id),
    placed_at     TIMESTAMPTZ NOT NULL,
    total         NUMERIC(14, 2) NOT NULL,
    currency      TEXT,
    discount_code TEXT,
    free_shipping BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS orders_customer_placed ON orders(customer_id, placed_at) INCLUDE (total, discount_code, free_shipping);

CREATE TABLE IF NOT EXISTS events (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    kind        TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    properties  JSONB
);
CREATE INDEX IF NOT EXISTS events_customer_kind_time ON events(customer_id, kind, occurred_at);

CREATE TABLE IF NOT EXISTS suppressions (
    identifier_kind TEXT NOT NULL,
    identifier      TEXT NOT NULL,
    reason          TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (identifier_kind, identifier)
);

CREATE TABLE IF NOT EXISTS runs (
    id          BIGSERIAL PRIMARY KEY,
    job         TEXT NOT NULL,
    target      TEXT,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    outcome     TEXT NOT NULL DEFAULT 'running',
    counts      TEXT NOT NULL DEFAULT '{}',
    error       TEXT
);
CREATE INDEX IF NOT EXISTS runs_job_started ON runs(job, started_at);

CREATE TABLE IF NOT EXISTS segments (
    name          TEXT PRIMARY KEY,
    description   TEXT,
    source        TEXT NOT NULL,
    compiled_sql  TEXT,
    size          BIGINT NOT NULL DEFAULT 0,
    last_run_id   BIGINT,
    last_joined   BIGINT NOT NULL DEFAULT 0,
    last_left     BIGINT NOT NULL DEFAULT 0,
    computed_at   BIGINT
);

CREATE TABLE IF NOT EXISTS segment_memberships (
    segment     TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (segment, customer_id)
);

CREATE TABLE IF NOT EXISTS segment_changes (
    run_id      BIGINT NOT NULL,
    segment     TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('joined', 'left')),
    at          BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS segment_changes_segment_run ON segment_changes(segment, run_id);

CREATE TABLE IF NOT EXISTS segment_sizes (
    segment TEXT NOT NULL,
    run_id  BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    size    BIGINT NOT NULL,
    PRIMARY KEY (segment, run_id)
);
