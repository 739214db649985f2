-- Remote jobs (issue 12 item 9): a batch a platform took as an asynchronous job (Google offline user
-- data job, SendGrid or Klaviyo import) is stored with its job id and its rows before campaignd waits
-- for it, so a restarted process polls the same job instead of sending the batch again. The row goes
-- away in the transaction that advances the ledger (job done) or when the job failed (batch resent).

CREATE TABLE IF NOT EXISTS remote_jobs (
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    job_id        TEXT NOT NULL,
    action        TEXT NOT NULL,
    run_id        BIGINT NOT NULL,
    submitted_at  BIGINT NOT NULL,
    PRIMARY KEY (destination, audience_name, job_id)
);

CREATE TABLE IF NOT EXISTS remote_job_members (
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    job_id        TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    payload       TEXT NOT NULL,
    PRIMARY KEY (destination, audience_name, job_id, customer_id),
    FOREIGN KEY (destination, audience_name, job_id)
        REFERENCES remote_jobs (destination, audience_name, job_id) ON DELETE CASCADE
);
