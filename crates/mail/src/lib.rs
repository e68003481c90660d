//! The outbox of outgoing email. A domain change that must tell someone (a confirmation
//! link, a "set your password" letter) calls [`enqueue`] inside its own transaction, so the
//! mail exists if and only if the change committed; a [`Mailer`] later delivers due mail
//! in bounded batches through a [`MailTransport`], retrying with exponential backoff.
//!
//! This crate owns the `outbox_mail` table, the limits of a mail, and delivery. It does not
//! own what mails say (the domain crates write their texts) nor who may read the outbox.
//! Delivery is at least once: a crash between the SMTP server's acceptance and the `sent`
//! mark sends that one mail again after [`CLAIM_LEASE_SECS`].
#![forbid(unsafe_code)]

mod mailer;
mod message;
mod outbox;
mod transport;

pub use mailer::{
    ATTEMPTS_MAX, CLAIM_LEASE_SECS, DELIVERY_BATCH_MAILS_MAX, DeliveryReport, Mailer, POLL_INTERVAL_MS_DEFAULT,
    RETRY_BASE_SECS, RETRY_CAP_SECS, SEND_TIMEOUT_SECS, retry_delay_secs,
};
pub use outbox::{
    ADDRESS_BYTES_MAX, BODY_BYTES_MAX, LAST_ERROR_CHARS_MAX, MailEntry, MailError, MailFilter, MailStatus,
    OutgoingMail, QueuedMail, SUBJECT_CHARS_MAX, enqueue, list,
};
pub use transport::{
    AnyTransport, MailTransport, SettingsError, SmtpSettings, SmtpTransport, SpoolTransport, TlsMode, TransportError,
};
