//! The effective configuration: defaults, then the TOML file (`--config`), then
//! `DATABASE_URL`, then `SMARTTICKET_*` environment variables (`__` separates sections:
//! `SMARTTICKET_SERVER__LISTEN`), then command-line flags. Unknown keys are errors, so a
//! typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Environment variables with the prefix that are not configuration keys.
const ENV_NOT_CONFIG: &[&str] =
    &["config", "test_database_url", "test_pkcs11_module", "test_pkcs11_token", "test_pkcs11_pin"];

/// Everything SmartTicket can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where SmartTicket keeps its files: the SQLite database, keys, spools, reports.
    pub data_dir: PathBuf,
    /// The database.
    pub database: DatabaseConfig,
    /// The HTTP server.
    pub server: ServerConfig,
    /// Logins and sessions.
    pub auth: AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// Where the keys live.
    pub hsm: HsmConfig,
    /// Outgoing mail.
    pub mail: MailConfig,
    /// Selling rules.
    pub sales: SalesConfig,
    /// Payment gateways.
    pub payments: PaymentsConfig,
    /// Lists for validators.
    pub acceptance: AcceptanceConfig,
}

/// `[acceptance]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcceptanceConfig {
    /// How often the server publishes the greenlist and denylist (a new version only when
    /// they changed), in milliseconds: a block reaches validators' next download this soon.
    pub publish_interval_ms: u64,
}

impl Default for AcceptanceConfig {
    fn default() -> Self {
        Self { publish_interval_ms: smartticket_fleet::PUBLISH_INTERVAL_MS_DEFAULT }
    }
}

/// `[sales]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SalesConfig {
    /// Only one active named fare card per person (CityPay 7.3).
    pub one_active_fare_card_per_customer: bool,
    /// Failed proofs of ownership allowed per card per day.
    pub ownership_attempts_per_day: u32,
    /// How far back taps count as "recently visited stations", in days.
    pub ownership_tap_window_days: u32,
    /// Days a blocked card's balance waits for offline taps before it moves.
    pub balance_transfer_wait_days: u32,
    /// How long a card session waits for the reader's next answer, in milliseconds.
    pub delivery_step_timeout_ms: u64,
}

impl Default for SalesConfig {
    fn default() -> Self {
        let policy = smartticket_sales::SalesPolicy::default();
        Self {
            one_active_fare_card_per_customer: policy.one_active_fare_card_per_customer,
            ownership_attempts_per_day: policy.ownership_attempts_per_day,
            ownership_tap_window_days: policy.ownership_tap_window_days,
            balance_transfer_wait_days: policy.balance_transfer_wait_days,
            delivery_step_timeout_ms: policy.delivery_step_timeout_ms,
        }
    }
}

/// Which bank processes cards (KIDSOK 3.3.2: the bank will change; selling code does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CardGatewayKind {
    /// The built-in test acquirer: a hosted page and signed webhooks, magic card numbers.
    TestAcquirer,
}

/// `[payments]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// The card gateway.
    pub card_gateway: CardGatewayKind,
    /// The test acquirer's webhook secret; empty means a random one per start (the
    /// hosted page and the webhook check live in the same process).
    pub test_acquirer_secret: Secret,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self { card_gateway: CardGatewayKind::TestAcquirer, test_acquirer_secret: Secret::default() }
    }
}

/// `[mail]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The sender of every mail: `SmartTicket <noreply@example.cz>` or a bare address.
    pub from: String,
    /// The SMTP server; empty means no SMTP: mails are written to `spool_dir` as .eml files.
    pub smtp_host: String,
    /// The SMTP port; 0 means the TLS mode's usual one (587, 465 or 25).
    pub smtp_port: u16,
    /// `starttls`, `implicit`, or `plain` (only for a relay on this machine; refuses a password).
    pub smtp_tls: smartticket_mail::TlsMode,
    /// The SMTP login, if the server wants one.
    pub smtp_username: String,
    /// Its password (better: SMARTTICKET_MAIL__SMTP_PASSWORD).
    pub smtp_password: Secret,
    /// Where mails go without SMTP; empty means `<data_dir>/mail`.
    pub spool_dir: String,
    /// How often the server looks for mail to send, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "SmartTicket <noreply@localhost>".into(),
            smtp_host: String::new(),
            smtp_port: 0,
            smtp_tls: smartticket_mail::TlsMode::Starttls,
            smtp_username: String::new(),
            smtp_password: Secret::default(),
            spool_dir: String::new(),
            poll_interval_ms: smartticket_mail::POLL_INTERVAL_MS_DEFAULT,
        }
    }
}

/// A secret read from configuration: printed as `********`, never in `Debug`.
#[derive(Clone, Default)]
pub struct Secret(Option<SecretString>);

impl Secret {
    /// The secret, if set.
    pub fn get(&self) -> Option<&SecretString> {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Secret(********)" } else { "Secret(unset)" })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_some() { "********" } else { "" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(Secret(if text.is_empty() { None } else { Some(SecretString::from(text)) }))
    }
}

/// Which HSM backend holds the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HsmBackend {
    /// A keystore file sealed under a passphrase.
    Soft,
    /// A PKCS#11 token.
    Pkcs11,
}

/// `[hsm]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HsmConfig {
    /// `soft` (a keystore file) or `pkcs11` (a token).
    pub backend: HsmBackend,
    /// The keystore file; empty means `<data_dir>/keys/keystore.json`.
    pub keystore: String,
    /// The keystore passphrase (better: SMARTTICKET_HSM__PASSPHRASE or `passphrase_file`).
    pub passphrase: Secret,
    /// A file whose first line is the keystore passphrase.
    pub passphrase_file: String,
    /// The PKCS#11 module.
    pub pkcs11_module: String,
    /// The token label.
    pub pkcs11_token: String,
    /// The user PIN (better: SMARTTICKET_HSM__PKCS11_PIN or `pkcs11_pin_file`).
    pub pkcs11_pin: Secret,
    /// A file whose first line is the PIN.
    pub pkcs11_pin_file: String,
    /// Prefix of SmartTicket's key labels in the token.
    pub namespace: String,
    /// The system identifier mixed into every card key diversification (6 to 21 bytes).
    pub system_id: String,
}

impl Default for HsmConfig {
    fn default() -> Self {
        Self {
            backend: HsmBackend::Soft,
            keystore: String::new(),
            passphrase: Secret::default(),
            passphrase_file: String::new(),
            pkcs11_module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            pkcs11_token: "smartticket".into(),
            pkcs11_pin: Secret::default(),
            pkcs11_pin_file: String::new(),
            namespace: "smartticket".into(),
            system_id: "SmartTicket".into(),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/db`, or empty for SQLite in the data directory.
    pub url: String,
    /// Connections per pool.
    pub connections_max: u32,
    /// How long to wait for a free connection, in milliseconds.
    pub acquire_timeout_ms: u64,
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Abandon requests running longer than this, in milliseconds.
    pub request_timeout_ms: u64,
    /// After SIGTERM, wait this long for requests in flight, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Trust `X-Forwarded-For` (only behind your own reverse proxy).
    pub trust_forwarded_for: bool,
    /// Where people reach this server; links in mails start with it.
    pub public_url: String,
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of a login session, in minutes.
    pub session_ttl_minutes: u32,
    /// Wrong passwords in a row that lock an account.
    pub login_failures_max: u32,
    /// How long a locked account stays locked, in minutes.
    pub lockout_minutes: u32,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a `tracing` filter such as
    /// `info,sqlx=warn`. `RUST_LOG` overrides it.
    pub level: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("smartticket-data"),
            database: DatabaseConfig::default(),
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            hsm: HsmConfig::default(),
            mail: MailConfig::default(),
            sales: SalesConfig::default(),
            payments: PaymentsConfig::default(),
            acceptance: AcceptanceConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            connections_max: smartticket_store::StoreOptions::CONNECTIONS_MAX_DEFAULT,
            acquire_timeout_ms: smartticket_store::StoreOptions::ACQUIRE_TIMEOUT_DEFAULT.as_millis() as u64,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let server = smartticket_server::ServerSettings::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: server.body_limit_bytes,
            request_timeout_ms: server.request_timeout_ms,
            shutdown_grace_ms: server.shutdown_grace_ms,
            trust_forwarded_for: server.trust_forwarded_for,
            public_url: smartticket_identity::IdentityPolicy::default().public_url,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        let policy = smartticket_identity::IdentityPolicy::default();
        Self {
            session_ttl_minutes: policy.session_ttl_minutes,
            login_failures_max: policy.login_failures_max,
            lockout_minutes: policy.lockout_minutes,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

impl Config {
    /// Reads the configuration from its sources, in order of precedence.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                anyhow::bail!("configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment
            .merge(Env::raw().only(&["database_url"]).map(|_| "database.url".into()))
            .merge(Env::prefixed("SMARTTICKET_").ignore(ENV_NOT_CONFIG).split("__"));
        let config: Config = figment.extract().context("invalid configuration")?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.database.connections_max >= 1, "database.connections_max must be at least 1");
        anyhow::ensure!(self.server.body_limit_bytes >= 1024, "server.body_limit_bytes must be at least 1024");
        anyhow::ensure!(self.server.request_timeout_ms >= 100, "server.request_timeout_ms must be at least 100");
        anyhow::ensure!(self.auth.session_ttl_minutes >= 1, "auth.session_ttl_minutes must be at least 1");
        anyhow::ensure!(self.auth.login_failures_max >= 1, "auth.login_failures_max must be at least 1");
        anyhow::ensure!(
            (6..=21).contains(&self.hsm.system_id.len()),
            "hsm.system_id must be 6 to 21 bytes (it is mixed into every card key)"
        );
        Ok(())
    }

    /// The storage options this configuration describes.
    pub fn store_options(&self) -> anyhow::Result<smartticket_store::StoreOptions> {
        let url = Some(self.database.url.as_str()).filter(|u| !u.trim().is_empty());
        let mut options = smartticket_store::StoreOptions::from_url_or_data_dir(url, &self.data_dir)?;
        options.connections_max = self.database.connections_max;
        options.acquire_timeout = std::time::Duration::from_millis(self.database.acquire_timeout_ms);
        Ok(options)
    }

    /// The identity policy this configuration describes.
    pub fn identity_policy(&self) -> smartticket_identity::IdentityPolicy {
        smartticket_identity::IdentityPolicy {
            session_ttl_minutes: self.auth.session_ttl_minutes,
            login_failures_max: self.auth.login_failures_max,
            lockout_minutes: self.auth.lockout_minutes,
            public_url: self.server.public_url.clone(),
            ..Default::default()
        }
    }

    /// The server settings this configuration describes.
    pub fn server_settings(&self) -> smartticket_server::ServerSettings {
        smartticket_server::ServerSettings {
            body_limit_bytes: self.server.body_limit_bytes,
            request_timeout_ms: self.server.request_timeout_ms,
            shutdown_grace_ms: self.server.shutdown_grace_ms,
            trust_forwarded_for: self.server.trust_forwarded_for,
        }
    }

    /// The selling policy.
    pub fn sales_policy(&self) -> smartticket_sales::SalesPolicy {
        smartticket_sales::SalesPolicy {
            one_active_fare_card_per_customer: self.sales.one_active_fare_card_per_customer,
            ownership_attempts_per_day: self.sales.ownership_attempts_per_day,
            ownership_tap_window_days: self.sales.ownership_tap_window_days,
            balance_transfer_wait_days: self.sales.balance_transfer_wait_days,
            delivery_step_timeout_ms: self.sales.delivery_step_timeout_ms,
        }
    }

    /// The mail transport: SMTP when `mail.smtp_host` is set, else the spool directory.
    pub fn mail_transport(&self) -> anyhow::Result<smartticket_mail::AnyTransport> {
        use smartticket_mail::{AnyTransport, SmtpSettings, SmtpTransport, SpoolTransport};
        let mail = &self.mail;
        if mail.smtp_host.trim().is_empty() {
            let dir =
                if mail.spool_dir.is_empty() { self.data_dir.join("mail") } else { PathBuf::from(&mail.spool_dir) };
            return Ok(AnyTransport::Spool(SpoolTransport::new(dir, &mail.from)?));
        }
        let settings = SmtpSettings {
            host: mail.smtp_host.clone(),
            port: (mail.smtp_port != 0).then_some(mail.smtp_port),
            tls: mail.smtp_tls,
            username: Some(mail.smtp_username.clone()).filter(|u| !u.is_empty()),
            password: mail.smtp_password.get().cloned(),
            from: mail.from.clone(),
            timeout: SmtpSettings::TIMEOUT_DEFAULT,
        };
        Ok(AnyTransport::Smtp(SmtpTransport::new(&settings)?))
    }

    /// The software keystore file.
    pub fn keystore_path(&self) -> std::path::PathBuf {
        if self.hsm.keystore.is_empty() {
            self.data_dir.join("keys").join("keystore.json")
        } else {
            std::path::PathBuf::from(&self.hsm.keystore)
        }
    }

    /// A copy safe to print: passwords in URLs replaced by `********` (other secrets mask
    /// themselves when serialised).
    pub fn masked(&self) -> Config {
        let mut masked = self.clone();
        masked.database.url = mask_url_password(&self.database.url);
        masked
    }
}

/// Replaces the password of a URL (`postgres://user:secret@host`) with `********`.
pub fn mask_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        Ok(parsed) if parsed.has_authority() => raw.to_owned(),
        // No authority (or unparseable): it might still hold a secret, so show only the scheme.
        _ if raw.is_empty() => String::new(),
        _ => format!("{}:********", raw.split(':').next().unwrap_or("?")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(mask_url_password("postgres://app:s3cret@db:5432/st"), "postgres://app:********@db:5432/st");
        assert_eq!(mask_url_password("postgres://app@db/st"), "postgres://app@db/st");
        assert_eq!(mask_url_password(""), "");
        assert!(!mask_url_password("weird:s3cret@@").contains("s3cret"));
    }

    #[test]
    fn defaults_are_valid_and_serialisable() {
        let config = Config::default();
        config.check().unwrap();
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("listen = \"127.0.0.1:8080\""));
    }
}
