//! Command-line arguments, as typed. Turned into a [`Config`](crate::config::Config) in
//! one place ([`Cli::config`]); commands get the config and their own flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use smartticket_crypto::keys::KeyRole;

use crate::config::{Config, LogFormat};

/// SmartTicket: sell electronic tickets and stored value, write them onto fare media,
/// validate them offline, and clear and settle every sale and tap.
#[derive(Debug, Parser)]
#[command(name = "smartticket", version, about, long_about = None, max_term_width = 100)]
#[command(after_help = "Start with `smartticket demo --serve`, then open http://127.0.0.1:8080/api/openapi.json.\n\
Configuration: --config FILE (TOML), then SMARTTICKET_* variables (e.g. SMARTTICKET_SERVER__LISTEN), then flags.\n\
Exit codes: 0 success, 1 failure, 2 bad usage or configuration, 3 database unavailable.")]
pub struct Cli {
    /// TOML configuration file
    #[arg(long, global = true, env = "SMARTTICKET_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database and other files [default: ./smartticket-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://user:pass@host/db); SQLite in the data directory if absent
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log format
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// More log detail (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The configuration file a data directory may carry.
pub const DATA_DIR_CONFIG_FILE: &str = "smartticket.toml";

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (migrates the database first)
    Serve(ServeArgs),
    /// Apply database migrations, or show their status
    Migrate(MigrateArgs),
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage administrators
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Create a fresh demo data directory showing the whole system, and optionally serve it
    Demo(DemoArgs),
    /// Manage the keys in the HSM
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Simulated cards: create, personalise, load, debit, show
    #[command(subcommand)]
    Card(CardCommand),
    /// Outgoing mail: list the outbox
    #[command(subcommand)]
    Mail(crate::commands::mail::MailCommand),
    /// The tariff catalogue: import a network document as a new version, show the one in force
    #[command(subcommand)]
    Catalog(crate::commands::catalog::CatalogCommand),
    /// Benchmarks on a scratch database: `bench sales` drives concurrent sales over HTTP
    #[command(subcommand)]
    Bench(crate::commands::bench::BenchCommand),
    /// Offline validators: provision one from the catalogue, tap media on it
    #[command(subcommand)]
    Validator(crate::commands::validator::ValidatorCommand),
    /// Access-control mode: a door controller's identifier list, REST API and event journal
    #[command(subcommand)]
    Access(crate::commands::access::AccessCommand),
}

/// Which roles `keys init` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleSet {
    /// Every role (a single-organisation installation or a demo)
    All,
    /// Everything but the credit key (an issuer that is not the minting authority)
    Issuer,
    /// Only the credit key (the minting authority)
    Minting,
}

fn parse_role(text: &str) -> Result<KeyRole, String> {
    text.parse().map_err(|_| {
        let names: Vec<&str> = KeyRole::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role `{text}`; roles: {}", names.join(", "))
    })
}

/// `keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the keys (a software keystore file, or keys inside a PKCS#11 token)
    Init {
        /// Which roles to create
        #[arg(long, value_enum, default_value = "all")]
        roles: RoleSet,
    },
    /// List keys: role, version, state and check value (never key material)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Create the next version of a role's key; the old one becomes verify-only
    Rotate {
        /// The role (personalisation, credit, debit, read, transaction_mac, tokenisation, list_signing)
        #[arg(long, value_parser = parse_role)]
        role: KeyRole,
    },
    /// Destroy a verify-only version of a key
    Retire {
        /// The role
        #[arg(long, value_parser = parse_role)]
        role: KeyRole,
        /// The version to destroy
        #[arg(long)]
        version: u8,
    },
    /// Split the software keystore into Shamir shares, any THRESHOLD of which restore it
    Split {
        /// Shares needed to restore
        #[arg(long)]
        threshold: u8,
        /// Shares to make
        #[arg(long)]
        shares: u8,
        /// Directory to write the share files into
        #[arg(long)]
        out: PathBuf,
    },
    /// Rebuild a software keystore from share files
    Restore {
        /// Where to write the keystore [default: the configured keystore]
        #[arg(long)]
        out: Option<PathBuf>,
        /// The share files
        #[arg(required = true)]
        shares: Vec<PathBuf>,
    },
    /// Write a validator secure-module profile: debit, read and tokenisation keys only
    ExportSam {
        /// The profile file to write
        #[arg(long)]
        out: PathBuf,
        /// A file holding the profile's passphrase [default: prompt]
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
}

/// A card holder profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// No holder on record
    Anonymous,
    /// A registered holder
    Named,
    /// A social card
    Social,
}

/// `card …`
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Write a blank simulated card image
    New {
        /// The 7-byte UID in hex, e.g. 04A1B2C3D4E5F6
        #[arg(long)]
        uid: String,
        /// The image file to write
        #[arg(long)]
        out: PathBuf,
    },
    /// Show what is on a card (read with the read key through the secure session)
    Show {
        /// The card image
        file: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Personalise a blank card: application, files, diversified keys
    Personalise {
        /// The card image
        file: PathBuf,
        /// The printed card number
        #[arg(long)]
        card_number: u64,
        /// Holder profile
        #[arg(long, value_enum, default_value = "named")]
        profile: Profile,
        /// Last day of validity
        #[arg(long, default_value = "2031-12-31")]
        expires: String,
    },
    /// Load value or contracts (needs the credit key)
    Load {
        /// The card image
        file: PathBuf,
        /// Purse credit in minor units
        #[arg(long, default_value_t = 0)]
        purse_minor: i32,
        /// A period pass of this many days from now
        #[arg(long)]
        period_days: Option<u32>,
        /// A trips contract with this many trips
        #[arg(long)]
        trips: Option<i32>,
        /// Zones the contract covers
        #[arg(long, value_delimiter = ',', default_value = "1")]
        zones: Vec<u32>,
        /// Catalogue product id
        #[arg(long, default_value_t = 1)]
        product: u32,
    },
    /// Hold a card to a remote server's reader: relay its delivery session over HTTP, so
    /// what was paid for the card is written to it (a phone, a ticket machine, a counter)
    Tap {
        /// A simulated card image
        #[arg(conflicts_with = "reader", required_unless_present = "reader")]
        file: Option<PathBuf>,
        /// A PC/SC reader (its name or part of it) instead of a card image
        #[arg(long)]
        reader: Option<String>,
        /// The server's base URL
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// A session token or partner API key (better: SMARTTICKET_TOKEN)
        #[arg(long, env = "SMARTTICKET_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Debit the purse (needs the read and debit keys)
    Debit {
        /// The card image
        file: PathBuf,
        /// Amount in minor units
        #[arg(long)]
        minor: i32,
    },
    /// Read a contactless bank card in a PC/SC reader: masked PAN, expiry, application and
    /// its token from the secure module (the full PAN is never shown)
    Emv {
        /// The PC/SC reader (its name or part of it)
        #[arg(long)]
        reader: String,
        /// The secure-module profile holding the tokenisation key (from `keys export-sam`)
        #[arg(long, value_name = "FILE")]
        sam: PathBuf,
        /// A file whose first line is the profile's passphrase [default: ask]
        #[arg(long, value_name = "FILE")]
        sam_passphrase_file: Option<PathBuf>,
        /// How long to wait for a card in the reader
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        wait_seconds: u64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// `serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// `migrate`
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only report which migrations are applied and pending; change nothing
    #[arg(long)]
    pub status: bool,
    /// Print the status as JSON
    #[arg(long)]
    pub json: bool,
}

/// `config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets masked
    Show {
        /// Print JSON instead of TOML
        #[arg(long)]
        json: bool,
    },
}

/// `admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an administrator (the first one, or another)
    Create(AdminCreateArgs),
}

/// `admin create`
#[derive(Debug, Args)]
pub struct AdminCreateArgs {
    /// Login email
    #[arg(long)]
    pub email: String,
    /// Name shown in the console and the audit log
    #[arg(long, default_value = "Administrator")]
    pub name: String,
    /// Read the password from the first line of standard input
    #[arg(long, conflicts_with = "generate_password")]
    pub password_stdin: bool,
    /// Generate a strong password and print it once
    #[arg(long)]
    pub generate_password: bool,
}

/// `demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Start the server on the demo data when done
    #[arg(long)]
    pub serve: bool,
    /// Address to listen on with --serve [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

impl Cli {
    /// The effective configuration: file and environment, then these flags. Without
    /// `--config`, a `smartticket.toml` inside the data directory is used if present, so a
    /// data directory (the demo's, for one) carries its own settings.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        let own_file = config.data_dir.join(DATA_DIR_CONFIG_FILE);
        if self.config.is_none() && own_file.is_file() {
            let data_dir = config.data_dir.clone();
            config = Config::load(Some(&own_file))?;
            config.data_dir = data_dir;
        }
        if let Some(url) = &self.database_url {
            config.database.url = url.clone();
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        let listen = match &self.command {
            Command::Serve(serve) => serve.listen,
            Command::Demo(demo) => demo.listen,
            _ => None,
        };
        if let Some(listen) = listen {
            config.server.listen = listen;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent() {
        Cli::command().debug_assert();
    }
}
