//! Where mail goes: an SMTP server ([`SmtpTransport`], rustls only) or a directory of
//! `.eml` files ([`SpoolTransport`], for installations without SMTP and for tests).
//!
//! A transport says only whether one mail was accepted; retries, backoff and the outbox
//! state belong to the [`Mailer`](crate::Mailer). Credentials never appear in `Debug`,
//! errors or logs.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::message;
use crate::outbox::QueuedMail;

/// Why one delivery attempt failed, and whether another could succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Worth retrying: the server is away, busy, or said "try later" (SMTP 4xx); the disk
    /// is full.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Not worth retrying: the server refused the mail for good (SMTP 5xx), or the mail
    /// cannot be built.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl TransportError {
    /// True when retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, TransportError::Permanent(_))
    }
}

/// The settings describe no usable transport; the operator must fix the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("mail settings: {message}")]
pub struct SettingsError {
    message: String,
}

impl SettingsError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

/// Delivers one mail. Implementations must be safe to call again with the same mail: the
/// outbox delivers at least once.
pub trait MailTransport: Send + Sync {
    /// Hands `mail` over; `Ok` means the other side has taken responsibility for it.
    fn send(&self, mail: &QueuedMail) -> impl Future<Output = Result<(), TransportError>> + Send;
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte, "SMTPS" (port 465).
    Implicit,
    /// No encryption, for a relay on the same machine (port 25); refuses credentials.
    Plain,
}

impl TlsMode {
    /// The port this mode is normally served on.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Implicit => 465,
            TlsMode::Plain => 25,
        }
    }

    /// The configured name.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Starttls => "starttls",
            TlsMode::Implicit => "implicit",
            TlsMode::Plain => "plain",
        }
    }
}

/// Where and how to reach the SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The server's host name (also the name its certificate must carry).
    pub host: String,
    /// The port; `None` for the mode's usual one.
    pub port: Option<u16>,
    /// How the connection is protected.
    pub tls: TlsMode,
    /// Log in as this user, if the server wants a login.
    pub username: Option<String>,
    /// The user's password (`SecretString` prints as `[REDACTED]`).
    pub password: Option<SecretString>,
    /// The sender, `SmartTicket <noreply@example.cz>` or a bare address.
    pub from: String,
    /// How long one SMTP exchange may take.
    pub timeout: Duration,
}

impl SmtpSettings {
    /// Time allowed for one SMTP exchange unless configured: generous for a slow relay,
    /// well inside the mailer's per-mail limit.
    pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(20);
}

/// Sends through an SMTP server over rustls, one connection per mail.
#[derive(Clone)]
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    description: String,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport").field("server", &self.description).finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// A transport for `settings`. Connects on first use, not here.
    pub fn new(settings: &SmtpSettings) -> Result<Self, SettingsError> {
        let host = settings.host.trim();
        if host.is_empty() {
            return Err(SettingsError::new("the SMTP host is empty"));
        }
        let from = message::parse_from(&settings.from)?;
        let port = settings.port.unwrap_or_else(|| settings.tls.default_port());
        let tls = match settings.tls {
            TlsMode::Starttls => Tls::Required(tls_parameters(host)?),
            TlsMode::Implicit => Tls::Wrapper(tls_parameters(host)?),
            TlsMode::Plain => Tls::None,
        };
        // `builder_dangerous` only means "no TLS chosen yet"; it is chosen on the next line.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        match (&settings.username, &settings.password) {
            (None, None) => {}
            (Some(user), Some(password)) => {
                if settings.tls == TlsMode::Plain {
                    return Err(SettingsError::new(
                        "refusing to send a password over a plain connection: use tls = \"starttls\" or \"implicit\"",
                    ));
                }
                builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
            }
            (Some(_), None) => return Err(SettingsError::new("an SMTP username needs a password")),
            (None, Some(_)) => return Err(SettingsError::new("an SMTP password needs a username")),
        }
        let description = format!("smtp {host}:{port} ({})", settings.tls.as_str());
        Ok(Self { inner: builder.build(), from, description })
    }

    /// Host, port and TLS mode, for logs.
    pub fn describe(&self) -> &str {
        &self.description
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, SettingsError> {
    TlsParameters::new_rustls(host.to_owned())
        .map_err(|e| SettingsError::new(format!("cannot set up TLS for {host}: {e}")))
}

impl MailTransport for SmtpTransport {
    async fn send(&self, mail: &QueuedMail) -> Result<(), TransportError> {
        let message = message::build(&self.from, mail)?;
        match self.inner.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(TransportError::Permanent(e.to_string())),
            Err(e) => Err(TransportError::Transient(e.to_string())),
        }
    }
}

/// Writes each mail as `<mail id>.eml` (RFC 5322, owner-only) into a directory: the
/// transport when no SMTP server is configured, so nothing is lost and an operator can
/// forward the files by hand.
#[derive(Debug, Clone)]
pub struct SpoolTransport {
    dir: PathBuf,
    from: Mailbox,
}

impl SpoolTransport {
    /// A spool in `dir` (created owner-only on first use), with `from` as the sender.
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> Result<Self, SettingsError> {
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            return Err(SettingsError::new("the spool directory is empty"));
        }
        Ok(Self { dir, from: message::parse_from(from)? })
    }

    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a mail is written to.
    pub fn path_of(&self, mail: smartticket_core::id::MailId) -> PathBuf {
        self.dir.join(format!("{mail}.eml"))
    }
}

impl MailTransport for SpoolTransport {
    async fn send(&self, mail: &QueuedMail) -> Result<(), TransportError> {
        let bytes = message::build(&self.from, mail)?.formatted();
        let dir = self.dir.clone();
        let path = self.path_of(mail.id());
        tokio::task::spawn_blocking(move || write_private(&dir, &path, &bytes))
            .await
            .map_err(|e| TransportError::Transient(format!("spool task failed: {e}")))?
            .map_err(|e| TransportError::Transient(format!("cannot write to the spool: {e}")))
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader sees the
/// whole message or none; both the file and the directory are owner-only.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    // A temporary file left by a crash keeps its old mode; make sure of it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The transport chosen by configuration: SMTP when a host is set, else the spool.
#[derive(Debug, Clone)]
pub enum AnyTransport {
    /// An SMTP server.
    Smtp(SmtpTransport),
    /// A directory of `.eml` files.
    Spool(SpoolTransport),
}

impl AnyTransport {
    /// What the transport is, for the startup log line (never credentials).
    pub fn describe(&self) -> String {
        match self {
            AnyTransport::Smtp(smtp) => smtp.describe().to_owned(),
            AnyTransport::Spool(spool) => format!("spool {}", spool.dir().display()),
        }
    }
}

impl MailTransport for AnyTransport {
    async fn send(&self, mail: &QueuedMail) -> Result<(), TransportError> {
        match self {
            AnyTransport::Smtp(smtp) => smtp.send(mail).await,
            AnyTransport::Spool(spool) => spool.send(mail).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(tls: TlsMode) -> SmtpSettings {
        SmtpSettings {
            host: "smtp.example.cz".into(),
            port: None,
            tls,
            username: Some("smartticket".into()),
            password: Some(SecretString::from("hunter2-but-longer".to_owned())),
            from: "SmartTicket <noreply@example.cz>".into(),
            timeout: SmtpSettings::TIMEOUT_DEFAULT,
        }
    }

    #[test]
    fn passwords_never_travel_in_clear_nor_show_in_debug() {
        assert!(SmtpTransport::new(&settings(TlsMode::Plain)).is_err());
        let transport = SmtpTransport::new(&settings(TlsMode::Starttls)).unwrap();
        assert_eq!(transport.describe(), "smtp smtp.example.cz:587 (starttls)");
        let shown = format!("{transport:?} {:?}", settings(TlsMode::Implicit));
        assert!(!shown.contains("hunter2"), "{shown}");
        let relay = SmtpSettings { username: None, password: None, ..settings(TlsMode::Plain) };
        assert!(SmtpTransport::new(&relay).is_ok());
        let half = SmtpSettings { password: None, ..settings(TlsMode::Implicit) };
        assert!(SmtpTransport::new(&half).is_err());
    }

    #[test]
    fn the_sender_must_be_an_address() {
        let bad = SmtpSettings { from: "SmartTicket".into(), ..settings(TlsMode::Starttls) };
        assert!(SmtpTransport::new(&bad).is_err());
        assert!(SpoolTransport::new("/tmp/x", "not an address").is_err());
        assert!(SpoolTransport::new("", "a@example.cz").is_err());
    }
}
