-- Tariff catalogue versions: each row is one network document (canonical JSON) in force
-- from its effective date (network-local, 'YYYY-MM-DD', which sorts as text in date
-- order) until the next version's. Versions are immutable: sales and clearing refer to
-- the version they were priced with, so the table refuses UPDATE and DELETE.

CREATE TABLE catalog_versions (
    id                      TEXT    PRIMARY KEY,
    effective_from          TEXT    NOT NULL UNIQUE
                                    CHECK (effective_from ~ '^[0-9]{4}-[01][0-9]-[0-3][0-9]$'),
    published_at_us         BIGINT  NOT NULL,
    -- A staff id (stf_…) or the name of the system component that published.
    published_by            TEXT    NOT NULL,
    note                    TEXT    NOT NULL DEFAULT '',
    document                TEXT    NOT NULL,
    -- SHA-256 of `document`, lower-case hex; checked whenever the document is loaded.
    document_sha256         TEXT    NOT NULL CHECK (length(document_sha256) = 64)
);

CREATE FUNCTION catalog_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'catalog_versions are immutable';
END
$$;
CREATE TRIGGER catalog_versions_no_change BEFORE UPDATE OR DELETE ON catalog_versions
    FOR EACH ROW EXECUTE FUNCTION catalog_versions_immutable();
CREATE TRIGGER catalog_versions_no_truncate BEFORE TRUNCATE ON catalog_versions
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_versions_immutable();
