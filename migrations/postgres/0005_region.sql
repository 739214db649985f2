-- Optional state/province/region of a customer (Meta's ST match key), imported like the other contact columns.
ALTER TABLE customers ADD COLUMN region TEXT;
