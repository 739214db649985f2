-- Incremental sync diff (issue 13): the diff of a segment's eligible members against an audience's
-- ledger compares (customer id, identity_version) pairs only. These covering indexes (bytewise
-- customer-id order, like the diff's pages) hold exactly those columns, so the diff can run on
-- index-only scans that read neither the ledger's payloads nor the customers' identifier columns.
CREATE INDEX IF NOT EXISTS sync_ledger_diff ON sync_ledger (destination, audience_name, customer_id COLLATE "C") INCLUDE (identity_version, kinds);
CREATE INDEX IF NOT EXISTS customers_sync ON customers (id COLLATE "C") INCLUDE (identity_version, consent_ads, consent_email);
