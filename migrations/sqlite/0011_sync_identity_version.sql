-- Incremental sync (issue 13): the sync diffs the segment against the ledger in the database and reads,
-- normalises and hashes only the members who joined or whose identifier columns changed.
--
-- customers.identity_version changes whenever one of the columns a connector prepares from changes
-- (email, phone, names, country, city, region, postal code, birth date, gender), whoever writes the row:
-- campaignd's import or the shop's own pipeline, through these triggers. It is an opaque token compared
-- for equality only: a random 64-bit value on every insert (so a customer deleted and inserted again does
-- not match its old ledger row) and on every identifier change. A new identifier column must be added to
-- the trigger below.
ALTER TABLE customers ADD COLUMN identity_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER IF NOT EXISTS customers_identity_insert AFTER INSERT ON customers
BEGIN
    UPDATE customers SET identity_version = random() WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS customers_identity_update
AFTER UPDATE OF email, phone, first_name, last_name, country, city, region, postal_code, birth_date, gender ON customers
WHEN OLD.email IS NOT NEW.email OR OLD.phone IS NOT NEW.phone OR OLD.first_name IS NOT NEW.first_name OR OLD.last_name IS NOT NEW.last_name OR OLD.country IS NOT NEW.country OR OLD.city IS NOT NEW.city OR OLD.region IS NOT NEW.region OR OLD.postal_code IS NOT NEW.postal_code OR OLD.birth_date IS NOT NEW.birth_date OR OLD.gender IS NOT NEW.gender
BEGIN
    UPDATE customers SET identity_version = random() WHERE id = NEW.id;
END;

-- What each ledger row was prepared from (NULL for rows written before this migration: they are
-- prepared once more and, their payload unchanged, only re-stamped), and which identifier kinds it
-- carries (bit 1 email, 2 phone, 4 address) for the sync's per-kind counts.
ALTER TABLE sync_ledger ADD COLUMN identity_version INTEGER;
ALTER TABLE sync_ledger ADD COLUMN kinds INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS sync_ledger_identity ON sync_ledger (destination, audience_name, customer_id, identity_version, kinds);

-- The connector mapping (normaliser) version the audience's ledger was last fully prepared with: when
-- it differs from the connector's current one, every member is prepared again and changed payloads resent.
ALTER TABLE destination_audiences ADD COLUMN mapping TEXT;
