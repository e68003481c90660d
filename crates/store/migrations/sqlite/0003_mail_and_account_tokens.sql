-- The outbox of outgoing mail and the single-use account tokens that mails carry.
--
-- A mail is inserted in the same transaction as the change that causes it, so it exists if
-- and only if that change committed; the mailer delivers it later. Account tokens (confirm
-- an email, set a password) are stored only as SHA-256 digests, like session tokens.

CREATE TABLE outbox_mail (
    id                      TEXT    PRIMARY KEY NOT NULL,
    to_address              TEXT    NOT NULL,
    subject                 TEXT    NOT NULL,
    -- Emptied once the mail is sent or has failed: bodies carry single-use links.
    body_text               TEXT    NOT NULL,
    created_at_us           INTEGER NOT NULL,
    -- A pending mail is not tried before this instant (retry backoff, or a mailer's lease).
    not_before_us           INTEGER NOT NULL,
    attempts                INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error              TEXT,
    sent_at_us              INTEGER,
    status                  TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    CHECK ((status = 'sent') = (sent_at_us IS NOT NULL))
) STRICT;
-- The mailer's question, "what is due?", reads only pending rows.
CREATE INDEX outbox_mail_due ON outbox_mail (not_before_us, id) WHERE status = 'pending';
CREATE INDEX outbox_mail_to ON outbox_mail (lower(to_address), id);

CREATE TABLE account_tokens (
    -- SHA-256 of the token; the token itself is only in the link mailed to the customer.
    token_hash              BLOB    PRIMARY KEY NOT NULL,
    customer_id             TEXT    NOT NULL REFERENCES customers (id),
    purpose                 TEXT    NOT NULL CHECK (purpose IN ('confirm_email', 'set_password')),
    created_at_us           INTEGER NOT NULL,
    expires_at_us           INTEGER NOT NULL,
    used_at_us              INTEGER,
    CHECK (expires_at_us > created_at_us)
) STRICT;
-- Finds a customer's recent tokens of one purpose (the reset rate limit, superseding).
CREATE INDEX account_tokens_customer ON account_tokens (customer_id, purpose, created_at_us);
