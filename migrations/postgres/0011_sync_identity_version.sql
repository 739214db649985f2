-- Incremental sync (issue 13): the sync diffs the segment against the ledger in the database and reads,
-- normalises and hashes only the members who joined or whose identifier columns changed.
--
-- customers.identity_version changes whenever one of the columns a connector prepares from changes
-- (email, phone, names, country, city, region, postal code, birth date, gender), whoever writes the row:
-- campaignd's import or the shop's own pipeline. It is an opaque token compared for equality only: a
-- fresh value of a sequence on every insert (the column default, so a customer deleted and inserted again
-- does not match its old ledger row) and, through the trigger, on every identifier change. A new
-- identifier column must be added to the trigger below.
CREATE SEQUENCE IF NOT EXISTS customer_identity_seq;
ALTER TABLE customers ADD COLUMN IF NOT EXISTS identity_version BIGINT NOT NULL DEFAULT nextval('customer_identity_seq');

CREATE OR REPLACE FUNCTION customers_identity_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.identity_version := nextval('customer_identity_seq');
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS customers_identity_update ON customers;
CREATE TRIGGER customers_identity_update
BEFORE UPDATE ON customers FOR EACH ROW
WHEN (OLD.email IS DISTINCT FROM NEW.email OR OLD.phone IS DISTINCT FROM NEW.phone OR OLD.first_name IS DISTINCT FROM NEW.first_name OR OLD.last_name IS DISTINCT FROM NEW.last_name OR OLD.country IS DISTINCT FROM NEW.country OR OLD.city IS DISTINCT FROM NEW.city OR OLD.region IS DISTINCT FROM NEW.region OR OLD.postal_code IS DISTINCT FROM NEW.postal_code OR OLD.birth_date IS DISTINCT FROM NEW.birth_date OR OLD.gender IS DISTINCT FROM NEW.gender)
EXECUTE FUNCTION customers_identity_bump();

-- What each ledger row was prepared from (NULL for rows written before this migration: they are
-- prepared once more and, their payload unchanged, only re-stamped), and which identifier kinds it
-- carries (bit 1 email, 2 phone, 4 address) for the sync's per-kind counts.
ALTER TABLE sync_ledger ADD COLUMN IF NOT EXISTS identity_version BIGINT;
ALTER TABLE sync_ledger ADD COLUMN IF NOT EXISTS kinds BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS sync_ledger_identity ON sync_ledger (destination, audience_name, customer_id COLLATE "C", identity_version, kinds);

-- The connector mapping (normaliser) version the audience's ledger was last fully prepared with: when
-- it differs from the connector's current one, every member is prepared again and changed payloads resent.
ALTER TABLE destination_audiences ADD COLUMN IF NOT EXISTS mapping TEXT;
