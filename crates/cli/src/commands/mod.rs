//! One module per command. Each opens what it needs from the [`Config`], calls the
//! libraries, and prints what a person (or with `--json`, a program) needs to know.

pub mod access;
mod admin;
pub mod bench;
mod card;
pub mod catalog;
mod demo;
mod demo_cards;
mod demo_sales;
mod demo_validators;
pub mod keys;
pub mod mail;
mod serve;
pub mod validator;
mod validator_fleet;
mod validator_run;

use std::sync::Arc;

use anyhow::Context;
use smartticket_core::{Clock, SystemClock};
use smartticket_identity::Identity;
use smartticket_store::Db;

use crate::args::{AdminCommand, Command, ConfigCommand, MigrateArgs};
use crate::config::Config;

/// A mistake in how the command was called (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs `command`.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => serve::run(&config).await,
        Command::Migrate(args) => migrate(&config, &args).await,
        Command::Config(ConfigCommand::Show { json }) => show_config(&config, json),
        Command::Admin(AdminCommand::Create(args)) => admin::create(&config, &args).await,
        Command::Demo(args) => demo::run(config, &args).await,
        Command::Keys(command) => keys::run(&config, &command),
        Command::Card(crate::args::CardCommand::Tap { file, reader, server, token }) => {
            card::tap(file.as_deref(), reader.as_deref(), &server, &token).await
        }
        Command::Card(command) => card::run(&config, &command),
        Command::Mail(command) => mail::run(&config, &command).await,
        Command::Catalog(command) => catalog::run(&config, &command).await,
        Command::Bench(command) => bench::run(&config, &command).await,
        Command::Validator(command) => validator::run(&config, &command).await,
        Command::Access(command) => access::run(&command).await,
    }
}

/// Opens the configured database and applies pending migrations.
pub async fn open_migrated(config: &Config) -> anyhow::Result<Db> {
    let options = config.store_options()?;
    let db = Db::open(&options).await.context("cannot open the database")?;
    let status = db.migrate().await.context("cannot migrate the database")?;
    tracing::info!(backend = %db.backend(), schema_version = ?status.applied.last(), "database ready");
    Ok(db)
}

/// The identity service over `db` with the configured policy and the system clock.
pub fn identity(config: &Config, db: &Db) -> anyhow::Result<(Identity, Arc<dyn Clock>)> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let identity = Identity::new(db.clone(), clock.clone(), config.identity_policy())?;
    Ok((identity, clock))
}

/// The keys for selling: the configured HSM, or, when the software keystore was never
/// created, an empty one (bank cards and deliveries then answer "keys unavailable" until
/// `smartticket keys init`). Any other failure, such as a wrong passphrase, stops here:
/// a server must never silently run without the keys it was given.
pub fn selling_hsm(config: &Config) -> anyhow::Result<Arc<dyn smartticket_crypto::hsm::Hsm>> {
    use crate::config::HsmBackend;
    if config.hsm.backend == HsmBackend::Soft && !config.keystore_path().exists() {
        tracing::warn!(
            keystore = %config.keystore_path().display(),
            "no keystore: bank cards and deliveries to cards are unavailable until `smartticket keys init`"
        );
        return Ok(Arc::new(smartticket_crypto::hsm::soft::SoftHsm::generate(&[])?));
    }
    let admin: Arc<dyn smartticket_crypto::hsm::KeyAdmin> = Arc::from(keys::open(config)?);
    Ok(admin)
}

/// Everything the server runs on, built from the configuration over `db`.
pub fn services(config: &Config, db: &Db) -> anyhow::Result<smartticket_server::Services> {
    services_with_hsm(config, db, selling_hsm(config)?)
}

/// [`services`] with the given keys (the benchmark's and the demo's own).
pub fn services_with_hsm(
    config: &Config,
    db: &Db,
    hsm: Arc<dyn smartticket_crypto::hsm::Hsm>,
) -> anyhow::Result<smartticket_server::Services> {
    use smartticket_sales::payments::test_acquirer::TestAcquirer;
    let (identity, clock) = identity(config, db)?;
    let catalog = smartticket_catalog::CatalogStore::new(db.clone(), clock.clone());
    let public_url = config.server.public_url.trim_end_matches('/').to_owned();
    let secret = match config.payments.test_acquirer_secret.get() {
        Some(secret) => secret.clone(),
        None => {
            let mut random = [0_u8; 32];
            smartticket_crypto::random_bytes(&mut random)?;
            secrecy::SecretString::from(hex::encode(random))
        }
    };
    let acquirer = match config.payments.card_gateway {
        crate::config::CardGatewayKind::TestAcquirer => Arc::new(TestAcquirer::new(secret, public_url.clone())),
    };
    let fleet = smartticket_fleet::Fleet::new(smartticket_fleet::FleetParts {
        db: db.clone(),
        clock: clock.clone(),
        hsm: hsm.clone(),
        catalog: catalog.clone(),
    });
    let sales = smartticket_sales::Sales::new(smartticket_sales::SalesParts {
        db: db.clone(),
        clock: clock.clone(),
        hsm,
        catalog,
        gateway: acquirer.clone(),
        public_url,
        policy: config.sales_policy(),
    });
    Ok(smartticket_server::Services {
        db: db.clone(),
        identity,
        sales,
        fleet,
        cards: smartticket_server::CardSettings { system_id: Arc::from(config.hsm.system_id.as_bytes()) },
        test_acquirer: Some(acquirer),
        clock,
        settings: config.server_settings(),
    })
}

async fn migrate(config: &Config, args: &MigrateArgs) -> anyhow::Result<()> {
    let options = config.store_options()?;
    let db = Db::open(&options).await.context("cannot open the database")?;
    let status = if args.status { db.migration_status().await? } else { db.migrate().await? };
    db.close().await;
    if args.json {
        let json = serde_json::json!({
            "backend": db.backend().to_string(),
            "known": status.known,
            "applied": status.applied,
            "pending": status.pending,
            "unknown": status.unknown,
            "modified": status.modified,
            "current": status.is_current(),
        });
        println!("{json}");
    } else if status.is_current() {
        println!("{} schema is current: {} migrations applied", db.backend(), status.applied.len());
    } else {
        println!(
            "{} schema is not current: pending {:?}, unknown {:?}, modified {:?}",
            db.backend(),
            status.pending,
            status.unknown,
            status.modified
        );
    }
    if args.status && !status.is_current() {
        anyhow::bail!("the schema is not current");
    }
    Ok(())
}

fn show_config(config: &Config, json: bool) -> anyhow::Result<()> {
    let masked = config.masked();
    if json {
        println!("{}", serde_json::to_string_pretty(&masked)?);
    } else {
        print!("{}", toml::to_string(&masked)?);
    }
    Ok(())
}
