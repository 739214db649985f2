-- Incremental sync diff (issue 13): the diff of a segment's eligible members against an audience's
-- ledger compares (customer id, identity_version) pairs only, as merges of index-ordered scans. These
-- covering indexes hold exactly those columns, so the diff reads neither the ledger's payloads (about
-- 500 bytes a member) nor the customers' identifier columns; both are read only for the rows a page
-- returns.
CREATE INDEX IF NOT EXISTS sync_ledger_diff ON sync_ledger(destination, audience_name, customer_id, identity_version, kinds);
CREATE INDEX IF NOT EXISTS customers_sync ON customers(id, identity_version, consent_ads, consent_email);
