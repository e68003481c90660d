-- Offline acceptance, the back office's side: the list versions it publishes for
-- validators, the numbers photos go by in those lists, and the batches of records
-- validators upload from their journals.

-- Every published greenlist and denylist version, as the signed file validators download.
-- The public key that signed it is kept beside it, so a stored version can still be read
-- (to build a delta from it) after its key is retired from the HSM.
CREATE TABLE list_versions (
    kind                    TEXT    NOT NULL CHECK (kind IN ('greenlist', 'denylist')),
    version                 BIGINT  NOT NULL CHECK (version >= 1),
    issued_at_us            BIGINT  NOT NULL,
    key_version             BIGINT  NOT NULL CHECK (key_version BETWEEN 1 AND 255),
    key_public              BYTEA   NOT NULL,
    entry_count             BIGINT  NOT NULL,
    coupon_count            BIGINT  NOT NULL,
    -- SHA-256 (hex) of the list's content (entries and coupons, unsigned): a new version is
    -- stored only when it differs from the latest one's.
    fingerprint             TEXT    NOT NULL,
    file                    BYTEA   NOT NULL,
    PRIMARY KEY (kind, version)
);

-- The 32-bit number a photo goes by in greenlist coupons (the list format has no room for
-- a photo id). Given once, the first time a list needs it, and never changed.
CREATE TABLE list_photo_refs (
    reference               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    photo_id                TEXT    NOT NULL UNIQUE REFERENCES photos (id),
    assigned_at_us          BIGINT  NOT NULL
);

-- What the list builder reads every few seconds, without scanning every medium.
CREATE INDEX media_blocked ON media (id) WHERE status IN ('blocked', 'permanently_blocked');
CREATE INDEX entitlements_active_contracts ON entitlements (medium_id) WHERE kind = 'contract' AND status = 'active';

-- A validator as its uploads know it: the highest sequence up to which every record of its
-- journal is stored (what acknowledgements say). Its row also serialises its uploads.
CREATE TABLE validator_devices (
    device_id               TEXT    PRIMARY KEY,
    contiguous_through      BIGINT  NOT NULL CHECK (contiguous_through >= 0),
    first_upload_at_us      BIGINT  NOT NULL,
    last_upload_at_us       BIGINT  NOT NULL
);

-- Every batch received: the same batch id always names the same device and sequences.
CREATE TABLE validator_batches (
    batch_id                TEXT    PRIMARY KEY,
    device_id               TEXT    NOT NULL REFERENCES validator_devices (device_id),
    first_sequence          BIGINT  NOT NULL CHECK (first_sequence >= 1),
    last_sequence           BIGINT  NOT NULL,
    record_count            BIGINT  NOT NULL,
    payload_bytes           BIGINT  NOT NULL,
    uploaded_by             TEXT,
    received_at_us          BIGINT  NOT NULL,
    CHECK (last_sequence >= first_sequence AND record_count = last_sequence - first_sequence + 1)
);

-- Each journal record exactly once per (device, sequence), with the batch that first
-- brought it. The payload is the validator engine's; this table does not read it.
CREATE TABLE validator_records (
    device_id               TEXT    NOT NULL REFERENCES validator_devices (device_id),
    sequence                BIGINT  NOT NULL CHECK (sequence >= 1),
    batch_id                TEXT    NOT NULL REFERENCES validator_batches (batch_id),
    payload                 BYTEA   NOT NULL,
    received_at_us          BIGINT  NOT NULL,
    PRIMARY KEY (device_id, sequence)
);
