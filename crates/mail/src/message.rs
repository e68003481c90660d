//! One RFC 5322 message per queued mail, built by lettre's message builder so SMTP and the
//! spool send exactly the same bytes. The `Message-ID` is derived from the mail's id, so
//! a mail sent twice after a crash is recognisable as one message by the receiver.

use std::str::FromStr;
use std::time::SystemTime;

use lettre::Address;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};

use crate::outbox::QueuedMail;
use crate::transport::{SettingsError, TransportError};

/// Parses the sender, `Name <address>` or a bare address.
pub(crate) fn parse_from(from: &str) -> Result<Mailbox, SettingsError> {
    Mailbox::from_str(from.trim())
        .map_err(|e| SettingsError::new(format!("the from address is not a mail address ({e})")))
}

/// The message for `mail` from `from`: plain UTF-8 text, with lettre choosing a transfer
/// encoding that keeps every line within RFC 5322's limits.
pub(crate) fn build(from: &Mailbox, mail: &QueuedMail) -> Result<Message, TransportError> {
    // The outbox checked the address when the mail was queued; a failure here means the
    // row changed since, and no retry will help.
    let to = Address::from_str(mail.to()).map_err(|e| TransportError::Permanent(format!("recipient: {e}")))?;
    let message_id = format!("<{}@{}>", mail.id(), from.email.domain());
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(mail.subject())
        .date(SystemTime::from(mail.created_at().datetime()))
        .message_id(Some(message_id))
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body().to_owned())
        .map_err(|e| TransportError::Permanent(format!("cannot build the message: {e}")))
}
