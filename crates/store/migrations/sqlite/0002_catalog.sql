-- Tariff catalogue versions: each row is one network document (canonical JSON) in force
-- from its effective date (network-local, 'YYYY-MM-DD', which sorts as text in date
-- order) until the next version's. Versions are immutable: sales and clearing refer to
-- the version they were priced with, so the table refuses UPDATE and DELETE.

CREATE TABLE catalog_versions (
    id                      TEXT    PRIMARY KEY NOT NULL,
    effective_from          TEXT    NOT NULL UNIQUE
                                    CHECK (effective_from GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    published_at_us         INTEGER NOT NULL,
    -- A staff id (stf_…) or the name of the system component that published.
    published_by            TEXT    NOT NULL,
    note                    TEXT    NOT NULL DEFAULT '',
    document                TEXT    NOT NULL,
    -- SHA-256 of `document`, lower-case hex; checked whenever the document is loaded.
    document_sha256         TEXT    NOT NULL CHECK (length(document_sha256) = 64)
) STRICT;

CREATE TRIGGER catalog_versions_no_update BEFORE UPDATE ON catalog_versions
BEGIN SELECT RAISE(ABORT, 'catalog_versions are immutable'); END;
CREATE TRIGGER catalog_versions_no_delete BEFORE DELETE ON catalog_versions
BEGIN SELECT RAISE(ABORT, 'catalog_versions are immutable'); END;
