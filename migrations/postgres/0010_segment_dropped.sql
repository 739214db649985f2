-- How many ids a `sql` segment's last run returned that are not customers (they are left out).
ALTER TABLE segments ADD COLUMN IF NOT EXISTS last_dropped BIGINT NOT NULL DEFAULT 0;
