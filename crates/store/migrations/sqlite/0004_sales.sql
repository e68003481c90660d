-- Selling: media and their lifecycle, carts, orders, payments, entitlements, deliveries to
-- cards, and cashiers' shifts. Money is integer minor units with its currency code.

CREATE TABLE media (
    id                      TEXT    PRIMARY KEY NOT NULL,
    kind                    TEXT    NOT NULL CHECK (kind IN ('fare_card', 'bank_card', 'phone_se', 'phone_token', 'qr_token')),
    status                  TEXT    NOT NULL CHECK (status IN ('manufactured', 'issued', 'inactive', 'active', 'blocked', 'permanently_blocked', 'destroyed')),
    customer_id             TEXT    REFERENCES customers (id),
    partner_id              TEXT    REFERENCES partners (id),
    label                   TEXT,
    uid                     TEXT    UNIQUE,
    printed_number          TEXT    UNIQUE,
    pan_token               TEXT    UNIQUE,
    masked_pan              TEXT,
    card_expiry             TEXT,
    device_ref              TEXT    UNIQUE,
    registration_receipt    TEXT    UNIQUE,
    next_contract_serial    INTEGER NOT NULL DEFAULT 1,
    card_tmc                INTEGER,
    status_reason           TEXT,
    replaced_by             TEXT    REFERENCES media (id),
    created_at_us           INTEGER NOT NULL,
    updated_at_us           INTEGER NOT NULL,
    activated_at_us         INTEGER
) STRICT;
CREATE INDEX media_customer ON media (customer_id) WHERE customer_id IS NOT NULL;

-- What the back office knows a medium did: top-ups now, taps once clearing reports them.
CREATE TABLE media_events (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    medium_id               TEXT    NOT NULL REFERENCES media (id),
    at_us                   INTEGER NOT NULL,
    kind                    TEXT    NOT NULL CHECK (kind IN ('tap', 'topup')),
    station                 TEXT,
    amount_minor            INTEGER,
    currency                TEXT
) STRICT;
CREATE INDEX media_events_medium ON media_events (medium_id, at_us);

CREATE TABLE ownership_attempts (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    medium_id               TEXT    NOT NULL REFERENCES media (id),
    customer_id             TEXT    NOT NULL REFERENCES customers (id),
    at_us                   INTEGER NOT NULL,
    succeeded               INTEGER NOT NULL CHECK (succeeded IN (0, 1))
) STRICT;
CREATE INDEX ownership_attempts_medium ON ownership_attempts (medium_id, at_us);
CREATE INDEX ownership_attempts_customer ON ownership_attempts (customer_id, at_us);

CREATE TABLE shifts (
    id                      TEXT    PRIMARY KEY NOT NULL,
    staff_id                TEXT    NOT NULL REFERENCES staff_users (id),
    counter                 TEXT    NOT NULL,
    currency                TEXT    NOT NULL,
    opening_float_minor     INTEGER NOT NULL,
    opened_at_us            INTEGER NOT NULL,
    closed_at_us            INTEGER,
    expected_minor          INTEGER,
    counted_minor           INTEGER,
    note                    TEXT
) STRICT;
CREATE UNIQUE INDEX shifts_one_open_per_cashier ON shifts (staff_id) WHERE closed_at_us IS NULL;

CREATE TABLE carts (
    id                      TEXT    PRIMARY KEY NOT NULL,
    owner                   TEXT    NOT NULL,
    status                  TEXT    NOT NULL CHECK (status IN ('open', 'checked_out')),
    created_at_us           INTEGER NOT NULL,
    updated_at_us           INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX carts_one_open_per_owner ON carts (owner) WHERE status = 'open';

CREATE TABLE cart_items (
    id                      TEXT    PRIMARY KEY NOT NULL,
    cart_id                 TEXT    NOT NULL REFERENCES carts (id),
    request                 TEXT    NOT NULL,
    medium_id               TEXT    NOT NULL REFERENCES media (id),
    created_at_us           INTEGER NOT NULL
) STRICT;
CREATE INDEX cart_items_cart ON cart_items (cart_id);

CREATE TABLE orders (
    id                      TEXT    PRIMARY KEY NOT NULL,
    owner                   TEXT    NOT NULL,
    customer_id             TEXT    REFERENCES customers (id),
    partner_id              TEXT    REFERENCES partners (id),
    staff_id                TEXT    REFERENCES staff_users (id),
    channel                 TEXT    NOT NULL CHECK (channel IN ('eshop', 'counter', 'partner')),
    cart_id                 TEXT    UNIQUE REFERENCES carts (id),
    status                  TEXT    NOT NULL CHECK (status IN ('awaiting_payment', 'paid', 'cancelled', 'refunded')),
    total_minor             INTEGER NOT NULL,
    currency                TEXT    NOT NULL,
    created_at_us           INTEGER NOT NULL,
    paid_at_us              INTEGER,
    updated_at_us           INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_customer ON orders (customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX orders_partner_day ON orders (partner_id, paid_at_us) WHERE partner_id IS NOT NULL;

-- Idempotency keys: the key that created an order, and the keys of concurrent checkouts
-- of the same cart that were answered with it, so a retry of any of them gets the order.
CREATE TABLE order_keys (
    owner                   TEXT    NOT NULL,
    idempotency_key         TEXT    NOT NULL,
    order_id                TEXT    NOT NULL REFERENCES orders (id),
    PRIMARY KEY (owner, idempotency_key)
) STRICT;

CREATE TABLE order_items (
    id                      TEXT    PRIMARY KEY NOT NULL,
    order_id                TEXT    NOT NULL REFERENCES orders (id),
    position                INTEGER NOT NULL,
    medium_id               TEXT    NOT NULL REFERENCES media (id),
    quote                   TEXT    NOT NULL,
    price_minor             INTEGER NOT NULL,
    UNIQUE (order_id, position)
) STRICT;

CREATE TABLE payments (
    id                      TEXT    PRIMARY KEY NOT NULL,
    order_id                TEXT    NOT NULL REFERENCES orders (id),
    method                  TEXT    NOT NULL CHECK (method IN ('card', 'bank_transfer', 'cash', 'partner')),
    gateway                 TEXT    NOT NULL,
    status                  TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'declined', 'failed', 'refunded')),
    amount_minor            INTEGER NOT NULL,
    currency                TEXT    NOT NULL,
    gateway_reference       TEXT,
    variable_symbol         TEXT    UNIQUE,
    shift_id                TEXT    REFERENCES shifts (id),
    failure                 TEXT,
    created_at_us           INTEGER NOT NULL,
    decided_at_us           INTEGER
) STRICT;
CREATE INDEX payments_order ON payments (order_id);
CREATE UNIQUE INDEX payments_one_approved_per_order ON payments (order_id) WHERE status = 'approved';

-- Every gateway callback received, so a repeated webhook is recognised and answered the same.
CREATE TABLE payment_callbacks (
    gateway                 TEXT    NOT NULL,
    event_id                TEXT    NOT NULL,
    payment_id              TEXT    NOT NULL REFERENCES payments (id),
    received_at_us          INTEGER NOT NULL,
    body                    TEXT    NOT NULL,
    PRIMARY KEY (gateway, event_id)
) STRICT;

CREATE TABLE entitlements (
    id                      TEXT    PRIMARY KEY NOT NULL,
    order_id                TEXT    REFERENCES orders (id),
    medium_id               TEXT    NOT NULL REFERENCES media (id),
    kind                    TEXT    NOT NULL CHECK (kind IN ('contract', 'purse_load', 'event_ticket')),
    status                  TEXT    NOT NULL CHECK (status IN ('pending_delivery', 'delivered', 'active', 'refunded', 'transferred', 'cancelled')),
    quote                   TEXT    NOT NULL,
    -- What validators and greenlists need, copied out of the quote so lists are built
    -- without parsing it: product, discount, zones (bit n-1 = zone n), validity, trips.
    product_code            TEXT    NOT NULL,
    discount_code           TEXT    NOT NULL,
    zones_mask              INTEGER NOT NULL,
    valid_from_us           INTEGER,
    valid_until_us          INTEGER,
    trips                   INTEGER,
    amount_minor            INTEGER NOT NULL,
    currency                TEXT    NOT NULL,
    contract_serial         INTEGER,
    delivery_id             TEXT,
    delivered_at_us         INTEGER,
    external_ticket         TEXT,
    transferred_to          TEXT    REFERENCES entitlements (id),
    created_at_us           INTEGER NOT NULL,
    updated_at_us           INTEGER NOT NULL
) STRICT;
CREATE INDEX entitlements_medium ON entitlements (medium_id, status);
CREATE INDEX entitlements_order ON entitlements (order_id);

CREATE TABLE deliveries (
    id                      TEXT    PRIMARY KEY NOT NULL,
    medium_id               TEXT    NOT NULL REFERENCES media (id),
    status                  TEXT    NOT NULL CHECK (status IN ('writing', 'completed', 'not_written', 'failed')),
    tmc_before              INTEGER NOT NULL,
    entitlement_ids         TEXT    NOT NULL,
    purse_credit_minor      INTEGER NOT NULL,
    started_at_us           INTEGER NOT NULL,
    finished_at_us          INTEGER,
    tmc_after               INTEGER,
    tmv                     TEXT,
    tmi                     TEXT,
    detail                  TEXT
) STRICT;
CREATE UNIQUE INDEX deliveries_one_writing_per_medium ON deliveries (medium_id) WHERE status = 'writing';

-- Passengers' photos, re-encoded server-side (JPEG, metadata stripped) before storing.
CREATE TABLE photos (
    id                      TEXT    PRIMARY KEY NOT NULL,
    customer_id             TEXT    NOT NULL REFERENCES customers (id),
    jpeg                    BLOB    NOT NULL,
    sha256                  TEXT    NOT NULL,
    width_px                INTEGER NOT NULL,
    height_px               INTEGER NOT NULL,
    uploaded_by             TEXT    NOT NULL,
    created_at_us           INTEGER NOT NULL
) STRICT;
CREATE INDEX photos_customer ON photos (customer_id);

-- A request for a discount category that needs approval (KIDSOK 3.1.3–3.1.4, 3.2.2).
CREATE TABLE discount_requests (
    id                      TEXT    PRIMARY KEY NOT NULL,
    customer_id             TEXT    NOT NULL REFERENCES customers (id),
    category                TEXT    NOT NULL,
    photo_id                TEXT    NOT NULL REFERENCES photos (id),
    note                    TEXT,
    status                  TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'revoked')),
    created_at_us           INTEGER NOT NULL,
    decided_at_us           INTEGER,
    decided_by              TEXT    REFERENCES staff_users (id),
    method                  TEXT,
    document                TEXT,
    approved_from_us        INTEGER,
    approved_until_us       INTEGER,
    reason                  TEXT,
    CHECK ((status = 'approved') = (approved_until_us IS NOT NULL AND decided_by IS NOT NULL AND method IS NOT NULL) OR status = 'revoked')
) STRICT;
CREATE UNIQUE INDEX discount_requests_one_pending ON discount_requests (customer_id, category) WHERE status = 'pending';
CREATE INDEX discount_requests_queue ON discount_requests (status, created_at_us);

-- A blocked card's purse balance, waiting until offline taps made before the block have
-- reached clearing; then it moves to the replacement (the clearing issue moves the money).
CREATE TABLE balance_transfers (
    id                      TEXT    PRIMARY KEY NOT NULL,
    from_medium             TEXT    NOT NULL UNIQUE REFERENCES media (id),
    to_medium               TEXT    NOT NULL REFERENCES media (id),
    status                  TEXT    NOT NULL CHECK (status IN ('waiting', 'done', 'cancelled')),
    available_after_us      INTEGER NOT NULL,
    amount_minor            INTEGER,
    currency                TEXT,
    created_at_us           INTEGER NOT NULL,
    done_at_us              INTEGER
) STRICT;

CREATE TABLE complaints (
    id                      TEXT    PRIMARY KEY NOT NULL,
    customer_id             TEXT    REFERENCES customers (id),
    medium_id               TEXT    REFERENCES media (id),
    opened_by               TEXT    NOT NULL REFERENCES staff_users (id),
    subject                 TEXT    NOT NULL,
    status                  TEXT    NOT NULL CHECK (status IN ('open', 'closed')),
    resolution              TEXT,
    created_at_us           INTEGER NOT NULL,
    closed_at_us            INTEGER,
    CHECK (customer_id IS NOT NULL OR medium_id IS NOT NULL)
) STRICT;
CREATE INDEX complaints_status ON complaints (status, created_at_us);

-- Every correction made in a complaint, with its reason (also in the audit log).
CREATE TABLE complaint_actions (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    complaint_id            TEXT    NOT NULL REFERENCES complaints (id),
    at_us                   INTEGER NOT NULL,
    staff_id                TEXT    NOT NULL REFERENCES staff_users (id),
    action                  TEXT    NOT NULL,
    reason                  TEXT    NOT NULL,
    details                 TEXT    NOT NULL
) STRICT;
CREATE INDEX complaint_actions_case ON complaint_actions (complaint_id, seq);
