-- Incremental sync (issue 13): a sync prepares only the members whose identifiers changed since the
-- platform acknowledged them, so a sync with nothing changed reads and hashes no member's identifiers.
-- `customers.identity_version` goes up whenever one of the identifier columns a connector prepares
-- changes, whoever writes the row (campaignd's import or the shop's own pipeline); the ledger keeps the
-- version each acknowledged payload was prepared from and the identifier kinds it carries (bits: 1 email,
-- 2 phone, 4 address; NULL: unknown, the member is compared again next run), and each audience the
-- mapping its ledger was built with.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS identity_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_ledger ADD COLUMN IF NOT EXISTS identity_version BIGINT;
ALTER TABLE sync_ledger ADD COLUMN IF NOT EXISTS kinds BIGINT;
ALTER TABLE destination_audiences ADD COLUMN IF NOT EXISTS mapping TEXT;
CREATE INDEX IF NOT EXISTS sync_ledger_customer ON sync_ledger(customer_id);

CREATE OR REPLACE FUNCTION campaignd_identity_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.email, NEW.phone, NEW.first_name, NEW.last_name, NEW.country, NEW.city, NEW.region, NEW.postal_code, NEW.birth_date, NEW.gender) IS DISTINCT FROM (OLD.email, OLD.phone, OLD.first_name, OLD.last_name, OLD.country, OLD.city, OLD.region, OLD.postal_code, OLD.birth_date, OLD.gender) THEN
        NEW.identity_version := OLD.identity_version + 1;
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS customers_identity_version ON customers;
CREATE TRIGGER customers_identity_version BEFORE UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION campaignd_identity_version();

-- A customer deleted (and perhaps inserted again, starting over at version 0) is compared in full.
CREATE OR REPLACE FUNCTION campaignd_forget_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sync_ledger SET identity_version = NULL WHERE customer_id = OLD.id;
    RETURN OLD;
END
$$;
DROP TRIGGER IF EXISTS customers_forget_identity ON customers;
CREATE TRIGGER customers_forget_identity AFTER DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION campaignd_forget_identity();
