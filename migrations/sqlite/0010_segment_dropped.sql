-- How many ids a `sql` segment's last run returned that are not customers (they are left out).
ALTER TABLE segments ADD COLUMN last_dropped INTEGER NOT NULL DEFAULT 0;
