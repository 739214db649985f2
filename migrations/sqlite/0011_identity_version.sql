-- Incremental sync (issue 13): a sync prepares only the members whose identifiers changed since the
-- platform acknowledged them, so a sync with nothing changed reads and hashes no member's identifiers.
-- `customers.identity_version` goes up whenever one of the identifier columns a connector prepares
-- changes, whoever writes the row (campaignd's import or the shop's own pipeline); the ledger keeps the
-- version each acknowledged payload was prepared from and the identifier kinds it carries (bits: 1 email,
-- 2 phone, 4 address; NULL: unknown, the member is compared again next run), and each audience the
-- mapping its ledger was built with.
ALTER TABLE customers ADD COLUMN identity_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_ledger ADD COLUMN identity_version INTEGER;
ALTER TABLE sync_ledger ADD COLUMN kinds INTEGER;
ALTER TABLE destination_audiences ADD COLUMN mapping TEXT;
CREATE INDEX IF NOT EXISTS sync_ledger_customer ON sync_ledger(customer_id);

CREATE TRIGGER IF NOT EXISTS customers_identity_version
AFTER UPDATE OF email, phone, first_name, last_name, country, city, region, postal_code, birth_date, gender ON customers
FOR EACH ROW WHEN OLD.email IS NOT NEW.email OR OLD.phone IS NOT NEW.phone OR OLD.first_name IS NOT NEW.first_name OR OLD.last_name IS NOT NEW.last_name OR OLD.country IS NOT NEW.country OR OLD.city IS NOT NEW.city OR OLD.region IS NOT NEW.region OR OLD.postal_code IS NOT NEW.postal_code OR OLD.birth_date IS NOT NEW.birth_date OR OLD.gender IS NOT NEW.gender
BEGIN
    UPDATE customers SET identity_version = OLD.identity_version + 1 WHERE id = NEW.id;
END;

-- A customer deleted (and perhaps inserted again, starting over at version 0) is compared in full.
CREATE TRIGGER IF NOT EXISTS customers_forget_identity
AFTER DELETE ON customers
FOR EACH ROW
BEGIN
    UPDATE sync_ledger SET identity_version = NULL WHERE customer_id = OLD.id;
END;
