//! The `outbox_mail` table: what a mail may hold, putting one in inside the caller's
//! transaction, and listing the outbox for operators. Bodies are never listed: they can
//! carry single-use links.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use smartticket_core::Timestamp;
use smartticket_core::id::MailId;
use smartticket_core::paging::{Page, PageSpec};
use smartticket_store::{Db, StoreError, Tx, decode_id, decode_time, sql};
use thiserror::Error;

/// Longest recipient address, in bytes: RFC 5321 §4.5.3.1.3 allows a 256-octet path, two
/// of which are the angle brackets.
pub const ADDRESS_BYTES_MAX: usize = 254;
/// Longest subject, in characters: RFC 5322 recommends 78-character lines, and a subject
/// longer than a few lines is a body in the wrong place.
pub const SUBJECT_CHARS_MAX: usize = 200;
/// Largest body, in bytes (64 KiB): our mails are short letters with a link, so anything
/// larger is a bug, and the bound keeps one row and one SMTP transaction small.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Longest delivery error kept, in characters; SMTP replies can run long.
pub const LAST_ERROR_CHARS_MAX: usize = 500;

/// Why a mail cannot be queued. The caller is at fault: every check runs before storage.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MailError {
    /// A required part is empty.
    #[error("{field} is empty")]
    Empty {
        /// `to`, `subject` or `body`.
        field: &'static str,
    },
    /// A part is longer than its limit.
    #[error("{field} is longer than {limit} {unit}")]
    TooLong {
        /// `to`, `subject` or `body`.
        field: &'static str,
        /// The limit.
        limit: usize,
        /// `bytes` or `characters`.
        unit: &'static str,
    },
    /// A part holds control characters: in a header they could start another header.
    #[error("{field} contains control characters")]
    ControlCharacters {
        /// `to`, `subject` or `body`.
        field: &'static str,
    },
    /// The recipient is not a mail address a transport can deliver to.
    #[error("to is not a deliverable mail address: {reason}")]
    Address {
        /// What the address parser said (never the address itself).
        reason: String,
    },
}

/// A mail to queue, checked against every limit when it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    to: String,
    subject: String,
    body: String,
}

impl OutgoingMail {
    /// Checks the recipient (a plain address, at most [`ADDRESS_BYTES_MAX`] bytes), the
    /// subject (one line, at most [`SUBJECT_CHARS_MAX`] characters) and the plain-text
    /// body (at most [`BODY_BYTES_MAX`] bytes; tabs and line breaks only).
    pub fn new(to: &str, subject: &str, body: &str) -> Result<OutgoingMail, MailError> {
        check_to(to)?;
        check_subject(subject)?;
        check_body(body)?;
        Ok(OutgoingMail { to: to.to_owned(), subject: subject.to_owned(), body: body.to_owned() })
    }

    /// The recipient's address.
    pub fn to(&self) -> &str {
        &self.to
    }

    /// The subject line.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The plain-text body.
    pub fn body(&self) -> &str {
        &self.body
    }
}

fn check_to(to: &str) -> Result<(), MailError> {
    const FIELD: &str = "to";
    if to.is_empty() {
        return Err(MailError::Empty { field: FIELD });
    }
    if to.len() > ADDRESS_BYTES_MAX {
        return Err(MailError::TooLong { field: FIELD, limit: ADDRESS_BYTES_MAX, unit: "bytes" });
    }
    if to.chars().any(char::is_control) {
        return Err(MailError::ControlCharacters { field: FIELD });
    }
    // The transports parse it again; checking here keeps an undeliverable address out of
    // the outbox instead of failing ten attempts later.
    lettre::Address::from_str(to).map_err(|e| MailError::Address { reason: e.to_string() })?;
    Ok(())
}

fn check_subject(subject: &str) -> Result<(), MailError> {
    const FIELD: &str = "subject";
    if subject.trim().is_empty() {
        return Err(MailError::Empty { field: FIELD });
    }
    if subject.chars().count() > SUBJECT_CHARS_MAX {
        return Err(MailError::TooLong { field: FIELD, limit: SUBJECT_CHARS_MAX, unit: "characters" });
    }
    if subject.chars().any(char::is_control) {
        return Err(MailError::ControlCharacters { field: FIELD });
    }
    Ok(())
}

fn check_body(body: &str) -> Result<(), MailError> {
    const FIELD: &str = "body";
    if body.trim().is_empty() {
        return Err(MailError::Empty { field: FIELD });
    }
    if body.len() > BODY_BYTES_MAX {
        return Err(MailError::TooLong { field: FIELD, limit: BODY_BYTES_MAX, unit: "bytes" });
    }
    if body.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(MailError::ControlCharacters { field: FIELD });
    }
    Ok(())
}

/// Puts `mail` in the outbox inside `tx`: it becomes due at `at` and exists only if `tx`
/// commits. Nothing is sent from here.
pub async fn enqueue(tx: &mut Tx, at: Timestamp, mail: &OutgoingMail) -> Result<MailId, StoreError> {
    let id = MailId::new();
    sql!(tx.conn(), |c| {
        sqlx::query(
            "INSERT INTO outbox_mail (id, to_address, subject, body_text, created_at_us, not_before_us, attempts, \
             status) VALUES ($1, $2, $3, $4, $5, $5, 0, 'pending')",
        )
        .bind(id.to_db())
        .bind(mail.to.as_str())
        .bind(mail.subject.as_str())
        .bind(mail.body.as_str())
        .bind(at.unix_micros())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(id)
}

/// Where a mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// Accepted by the transport (the SMTP server, or written to the spool).
    Sent,
    /// Given up on after a permanent refusal or [`ATTEMPTS_MAX`](crate::ATTEMPTS_MAX)
    /// attempts; `last_error` says why.
    Failed,
}

impl MailStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [MailStatus; 3] = [MailStatus::Pending, MailStatus::Sent, MailStatus::Failed];

    /// The stored and written name.
    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Pending => "pending",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for MailStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MailStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MailStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| "unknown mail status; expected pending, sent or failed".to_owned())
    }
}

/// A mail handed to a [`MailTransport`](crate::MailTransport): its id, recipient and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub(crate) id: MailId,
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) created_at: Timestamp,
    pub(crate) attempts: u32,
}

impl QueuedMail {
    /// The mail's id; transports name files and `Message-ID`s after it.
    pub fn id(&self) -> MailId {
        self.id
    }

    /// The recipient's address.
    pub fn to(&self) -> &str {
        &self.to
    }

    /// The subject line.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The plain-text body.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// When it was queued; the message's `Date`.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// Attempts made before this one.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// One mail as the outbox lists it: everything but the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailEntry {
    /// Id.
    pub id: MailId,
    /// The recipient.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// Where it stands.
    pub status: MailStatus,
    /// Delivery attempts made.
    pub attempts: u32,
    /// When it was queued.
    pub created_at: Timestamp,
    /// For a pending mail, the instant before which it is not tried (a retry's backoff);
    /// absent once the mail is sent or failed.
    pub not_before: Option<Timestamp>,
    /// When the transport accepted it.
    pub sent_at: Option<Timestamp>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Which mails to list; the filters combine with AND.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MailFilter {
    /// Only mails in this status.
    pub status: Option<MailStatus>,
    /// Only mails to this address (case-insensitive).
    pub to: Option<String>,
}

type EntryRow = (String, String, String, String, i64, i64, i64, Option<i64>, Option<String>);

/// Lists the outbox, newest first, one page at a time.
pub async fn list(db: &Db, filter: &MailFilter, page: &PageSpec<String>) -> Result<Page<MailEntry>, StoreError> {
    let to = filter.to.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_lowercase);
    // An address longer than any stored one matches nothing; do not ship it to the database.
    if to.as_ref().is_some_and(|t| t.len() > ADDRESS_BYTES_MAX) {
        return Ok(Page { items: Vec::new(), next_cursor: None });
    }
    let rows: Vec<EntryRow> = sql!(db.reader(), |c| {
        sqlx::query_as(
            "SELECT id, to_address, subject, status, attempts, created_at_us, not_before_us, sent_at_us, last_error \
             FROM outbox_mail WHERE ($1 IS NULL OR id < $1) AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR lower(to_address) = $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(page.after.as_deref())
        .bind(filter.status.map(MailStatus::as_str))
        .bind(to.as_deref())
        .bind(page.fetch_rows())
        .fetch_all(c)
        .await
    })?;
    let entries = rows.into_iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(entries, page, |e| e.id.to_db()))
}

fn entry_from_row(row: EntryRow) -> Result<MailEntry, StoreError> {
    let (id, to, subject, status, attempts, created_us, not_before_us, sent_us, last_error) = row;
    let status = MailStatus::from_str(&status).map_err(|_| StoreError::Corrupt(format!("mail status `{status}`")))?;
    Ok(MailEntry {
        id: decode_id(&id, MailId::from_db)?,
        to,
        subject,
        status,
        attempts: decode_attempts(attempts)?,
        created_at: decode_time(created_us)?,
        not_before: (status == MailStatus::Pending).then(|| decode_time(not_before_us)).transpose()?,
        sent_at: sent_us.map(decode_time).transpose()?,
        last_error,
    })
}

pub(crate) fn decode_attempts(attempts: i64) -> Result<u32, StoreError> {
    u32::try_from(attempts).map_err(|_| StoreError::Corrupt(format!("mail attempts {attempts}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_with_their_own_errors() {
        assert!(OutgoingMail::new("jana@example.cz", "Hello", "Body\nline two\n").is_ok());
        assert_eq!(OutgoingMail::new("", "s", "b"), Err(MailError::Empty { field: "to" }));
        let long_to = format!("{}@example.cz", "a".repeat(ADDRESS_BYTES_MAX));
        assert!(matches!(OutgoingMail::new(&long_to, "s", "b"), Err(MailError::TooLong { field: "to", .. })));
        assert!(matches!(OutgoingMail::new("not an address", "s", "b"), Err(MailError::Address { .. })));
        assert!(matches!(OutgoingMail::new("Jana <jana@example.cz>", "s", "b"), Err(MailError::Address { .. })));
        let injected = "Hello\r\nBcc: everyone@example.cz";
        assert_eq!(
            OutgoingMail::new("jana@example.cz", injected, "b"),
            Err(MailError::ControlCharacters { field: "subject" })
        );
        let long_subject = "ř".repeat(SUBJECT_CHARS_MAX + 1);
        assert!(matches!(
            OutgoingMail::new("jana@example.cz", &long_subject, "b"),
            Err(MailError::TooLong { field: "subject", .. })
        ));
        assert!(OutgoingMail::new("jana@example.cz", &"ř".repeat(SUBJECT_CHARS_MAX), "b").is_ok());
        let big = "x".repeat(BODY_BYTES_MAX + 1);
        assert!(matches!(
            OutgoingMail::new("jana@example.cz", "s", &big),
            Err(MailError::TooLong { field: "body", .. })
        ));
        assert!(OutgoingMail::new("jana@example.cz", "s", &big[1..]).is_ok());
        assert_eq!(
            OutgoingMail::new("jana@example.cz", "s", "nul\0"),
            Err(MailError::ControlCharacters { field: "body" })
        );
    }

    #[test]
    fn statuses_round_trip() {
        for status in MailStatus::ALL {
            assert_eq!(status.as_str().parse::<MailStatus>(), Ok(status));
        }
        assert!("sending".parse::<MailStatus>().is_err());
    }
}
