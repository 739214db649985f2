-- Leader leases for the daemon: one row per scheduled job. The replica whose `holder` id is on the row
-- (and whose lease has not expired) runs that job's ticks; `last_tick` is the cron slot last claimed, so
-- a tick is never run twice even by a late replica. `job_ticks` logs every claimed tick and who ran it.

CREATE TABLE IF NOT EXISTS leases (
    job         TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    last_tick   INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS job_ticks (
    job        TEXT NOT NULL,
    tick       INTEGER NOT NULL,
    holder     TEXT NOT NULL,
    claimed_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS job_ticks_job_tick ON job_ticks(job, tick);
