-- Membership writes (issue 13): every recompute appends one `segment_changes` row per member who
-- joined or left, and each row was indexed twice. `segment_changes_segment_run (segment, run_id)`
-- served no query the other index does not: the only reader of the table (the KPIs' membership
-- intervals) filters by segment and looks rows up by (segment, customer_id, run_id), both served by
-- `segment_changes_customer (segment, customer_id, run_id)`. Measured on Postgres at 1M customers,
-- writing 260,415 changes of a first recompute: 0.93-0.96 s with both indexes, 0.68-0.82 s with one
-- (0.79M WAL records against 0.52-0.57M).
DROP INDEX IF EXISTS segment_changes_segment_run;
