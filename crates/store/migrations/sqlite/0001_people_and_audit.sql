-- People who log in (staff, customers), partners with API keys, login sessions, and the
-- append-only audit log. Times are microseconds since the Unix epoch (UTC) in *_us
-- columns; ids are hyphenated UUID text; secrets are stored only as hashes.

CREATE TABLE staff_users (
    id                      TEXT    PRIMARY KEY NOT NULL,
    email                   TEXT    NOT NULL,
    email_normalized        TEXT    NOT NULL UNIQUE,
    display_name            TEXT    NOT NULL,
    role                    TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'cashier', 'carrier', 'auditor')),
    password_hash           TEXT    NOT NULL,
    disabled                INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_logins           INTEGER NOT NULL DEFAULT 0,
    locked_until_us         INTEGER,
    password_changed_at_us  INTEGER NOT NULL,
    created_at_us           INTEGER NOT NULL,
    updated_at_us           INTEGER NOT NULL
) STRICT;

CREATE TABLE customers (
    id                      TEXT    PRIMARY KEY NOT NULL,
    email                   TEXT    NOT NULL,
    email_normalized        TEXT    NOT NULL UNIQUE,
    display_name            TEXT    NOT NULL,
    -- NULL until the customer sets one (an account opened at a counter).
    password_hash           TEXT,
    email_confirmed_at_us   INTEGER,
    disabled                INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_logins           INTEGER NOT NULL DEFAULT 0,
    locked_until_us         INTEGER,
    created_at_us           INTEGER NOT NULL,
    updated_at_us           INTEGER NOT NULL
) STRICT;

CREATE TABLE partners (
    id                      TEXT    PRIMARY KEY NOT NULL,
    name                    TEXT    NOT NULL UNIQUE,
    contact_email           TEXT    NOT NULL,
    disabled                INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at_us           INTEGER NOT NULL,
    updated_at_us           INTEGER NOT NULL
) STRICT;

CREATE TABLE partner_api_keys (
    id                      TEXT    PRIMARY KEY NOT NULL,
    partner_id              TEXT    NOT NULL REFERENCES partners (id),
    label                   TEXT    NOT NULL,
    -- SHA-256 of the whole key; the key itself is shown once and never stored.
    token_hash              BLOB    NOT NULL UNIQUE,
    -- The first characters of the key, so people can tell their keys apart.
    token_prefix            TEXT    NOT NULL,
    created_by              TEXT    NOT NULL,
    created_at_us           INTEGER NOT NULL,
    revoked_at_us           INTEGER,
    last_used_at_us         INTEGER
) STRICT;
CREATE INDEX partner_api_keys_partner ON partner_api_keys (partner_id);

CREATE TABLE sessions (
    id                      TEXT    PRIMARY KEY NOT NULL,
    -- SHA-256 of the bearer token; the token itself is given to the client once.
    token_hash              BLOB    NOT NULL UNIQUE,
    staff_id                TEXT    REFERENCES staff_users (id),
    customer_id             TEXT    REFERENCES customers (id),
    created_at_us           INTEGER NOT NULL,
    expires_at_us           INTEGER NOT NULL,
    revoked_at_us           INTEGER,
    source_ip               TEXT,
    CHECK ((staff_id IS NULL) <> (customer_id IS NULL))
) STRICT;
CREATE INDEX sessions_staff ON sessions (staff_id) WHERE staff_id IS NOT NULL;
CREATE INDEX sessions_customer ON sessions (customer_id) WHERE customer_id IS NOT NULL;

CREATE TABLE audit_log (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us                   INTEGER NOT NULL,
    actor_kind              TEXT    NOT NULL CHECK (actor_kind IN ('staff', 'customer', 'partner', 'system', 'anonymous')),
    actor_id                TEXT,
    actor_role              TEXT,
    action                  TEXT    NOT NULL,
    target_kind             TEXT,
    target_id               TEXT,
    outcome                 TEXT    NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
    reason                  TEXT,
    source_ip               TEXT,
    request_id              TEXT,
    details                 TEXT    NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at_us);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_target ON audit_log (target_id, seq);

-- Append-only, enforced by the database itself rather than by convention.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
