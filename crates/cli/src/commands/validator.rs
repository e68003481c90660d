//! `smartticket validator …`: provision a validator from the catalogue in force (`init`),
//! and run one on simulated media (`tap`) or a PC/SC reader (`run`). The decisions are the
//! `acceptance` engine's; this module wires files, keys and readers to it and prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use smartticket_acceptance::engine::{Decision, FareTable, ListKey, MediumType, Outcome, Validator, ValidatorConfig};
use smartticket_acceptance::journal::{DeviceId, Journal, JournalLimits};
use smartticket_acceptance::lists::{MediumKey, MediumKind, TrustedKeys};
use smartticket_card::desfire::host::Desfire;
use smartticket_card::emv::TerminalData;
use smartticket_card::emv::sim::EmvSimCard;
use smartticket_card::fare::KeySource;
use smartticket_card::sim::SimCard;
use smartticket_catalog::{Catalog, CatalogStore, ProductKind};
use smartticket_core::{Clock, SystemClock, Timestamp};
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::token::Expiry;

use super::UsageError;
use crate::config::Config;

/// Largest validator configuration file read: a few hundred bytes in practice.
const CONFIG_FILE_BYTES_MAX: u64 = 256 * 1024;
/// Largest list file read from disk (the format's own limit is larger; a device keeps
/// lists of a few million media).
const LIST_FILE_BYTES_MAX: u64 = 1 << 30;

/// `validator …`
#[derive(Debug, clap::Subcommand)]
pub enum ValidatorCommand {
    /// Write a validator configuration from the catalogue in force: its place, route and fares
    Init(InitArgs),
    /// Tap media on a simulated validator: fare card images, bank cards, phone tokens
    Tap(TapArgs),
    /// Run a validator: taps from a PC/SC reader (or media named on standard input), lists
    /// and uploads through the back office when one is given
    Run(super::validator_run::RunArgs),
    /// Simulate a fleet of validators against a running server and report what it did
    Fleet(super::validator_fleet::FleetArgs),
}

/// `validator init`
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The device number
    #[arg(long)]
    pub device: u32,
    /// The carrier operating it
    #[arg(long, default_value = "DEMO")]
    pub carrier: String,
    /// The stop or gate code
    #[arg(long, default_value_t = 1)]
    pub location: u16,
    /// The zone it stands in, 1-32
    #[arg(long)]
    pub zone: u8,
    /// A route (line code from the catalogue): the zones from this zone to its end
    #[arg(long)]
    pub route: Option<String>,
    /// Sell a single fare to bank cards with no coupon (on vehicles)
    #[arg(long)]
    pub emv_purchases: bool,
    /// Where to write the configuration (TOML)
    #[arg(long)]
    pub out: PathBuf,
}

/// `validator tap`
#[derive(Debug, clap::Args)]
pub struct TapArgs {
    /// The validator's configuration file (from `validator init`)
    #[arg(long, value_name = "FILE")]
    pub validator: PathBuf,
    /// The secure-module profile (from `keys export-sam`)
    #[arg(long)]
    pub sam: PathBuf,
    /// A file whose first line is the profile's passphrase [default: ask in a terminal]
    #[arg(long)]
    pub sam_passphrase_file: Option<PathBuf>,
    /// The journal directory [default: <data_dir>/validators/<device>]
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Signed list files to install first (greenlist, denylist; full or delta)
    #[arg(long = "list")]
    pub lists: Vec<PathBuf>,
    /// The instant of the taps, RFC 3339 [default: now]
    #[arg(long)]
    pub at: Option<String>,
    /// Print each decision as one JSON line
    #[arg(long)]
    pub json: bool,
    /// Media: a fare card image (FILE.json), `bank:PAN:MM/YY` (a simulated contactless
    /// bank card), or `phone:HEX` (a 16-byte phone token)
    #[arg(required = true)]
    pub media: Vec<String>,
}

/// Runs `validator …`.
pub async fn run(config: &Config, command: &ValidatorCommand) -> anyhow::Result<()> {
    match command {
        ValidatorCommand::Init(args) => init(config, args).await,
        ValidatorCommand::Tap(args) => tap(config, args),
        ValidatorCommand::Run(args) => super::validator_run::run(config, args).await,
        ValidatorCommand::Fleet(args) => super::validator_fleet::run(config, args).await,
    }
}

async fn init(config: &Config, args: &InitArgs) -> anyhow::Result<()> {
    if args.out.exists() {
        return Err(UsageError(format!("{} already exists", args.out.display())).into());
    }
    let db = super::open_migrated(config).await?;
    let clock = SystemClock;
    let store = CatalogStore::new(db.clone(), std::sync::Arc::new(SystemClock));
    let (_, catalog) = store.in_force_at(clock.now()).await.context("no catalogue in force: import one first")?;
    db.close().await;
    let route_zones = match &args.route {
        None => Vec::new(),
        Some(code) => route_from(&catalog, code, args.zone)?,
    };
    let validator = ValidatorConfig {
        device: args.device,
        carrier: args.carrier.clone(),
        location: args.location,
        zone: args.zone,
        route_zones,
        passback_seconds: 60,
        list_age_max_seconds: 48 * 3_600,
        emv_purchases: args.emv_purchases,
        fares: fare_table(&catalog)?,
        list_keys: ListKey::all_from(super::selling_hsm(config)?.as_ref())?,
    };
    validator.check()?;
    write_config(&args.out, &validator)?;
    println!(
        "wrote {}: device {} in zone {}, {} zone(s) ahead, fares of tariff {}",
        args.out.display(),
        validator.device,
        validator.zone,
        validator.ride_zones().len(),
        validator.fares.tariff_version
    );
    Ok(())
}

/// Writes a validator configuration as TOML.
pub fn write_config(path: &Path, validator: &ValidatorConfig) -> anyhow::Result<()> {
    let text = toml::to_string_pretty(validator).context("cannot encode the configuration")?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The zones of `route` from `zone` to the end of the line.
pub fn route_from(catalog: &Catalog, code: &str, zone: u8) -> anyhow::Result<Vec<u8>> {
    let route = catalog
        .document()
        .routes
        .iter()
        .find(|route| route.code == code)
        .ok_or_else(|| UsageError(format!("the catalogue has no route {code}")))?;
    let start = route
        .zones
        .iter()
        .position(|z| *z == zone)
        .ok_or_else(|| UsageError(format!("route {code} does not pass zone {zone}")))?;
    Ok(route.zones.get(start..).map(<[u8]>::to_vec).unwrap_or_default())
}

/// Single fares by discount card code and zone count, from the catalogue's single-fare
/// product.
pub fn fare_table(catalog: &Catalog) -> anyhow::Result<FareTable> {
    let single = catalog
        .products()
        .find(|product| product.kind == ProductKind::SingleFare)
        .ok_or_else(|| UsageError("the catalogue sells no single fare".into()))?;
    let mut single_fares: BTreeMap<u16, Vec<i64>> = BTreeMap::new();
    for discount in catalog.discounts() {
        let fares: Vec<i64> = (1..=32_u8)
            .map_while(|zones| single.price(&discount.code, Some(zones)).map(|price| price.amount_minor))
            .collect();
        if !fares.is_empty() {
            single_fares.insert(discount.card_code, fares);
        }
    }
    let tariff_version = catalog.version().map(|v| v.to_string()).unwrap_or_else(|| "unpublished".into());
    Ok(FareTable { tariff_version, currency: catalog.currency().code().to_owned(), single_fares })
}

/// Reads a validator configuration (TOML) and checks it.
pub fn read_config(path: &Path) -> anyhow::Result<ValidatorConfig> {
    let text = read_limited(path, CONFIG_FILE_BYTES_MAX)?;
    let text = String::from_utf8(text).with_context(|| format!("{} is not UTF-8", path.display()))?;
    let validator: ValidatorConfig =
        toml::from_str(&text).with_context(|| format!("{} is not a validator configuration", path.display()))?;
    validator.check()?;
    Ok(validator)
}

fn read_limited(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(UsageError(format!("{} is larger than {limit} bytes", path.display())).into());
    }
    Ok(bytes)
}

/// The journal's device id: the device number, so two validators never share one.
pub fn device_id(device: u32) -> DeviceId {
    let mut id = [0_u8; 16];
    id[..3].copy_from_slice(b"STV");
    id[12..].copy_from_slice(&device.to_be_bytes());
    DeviceId(id)
}

/// Opens a validator: its configuration, journal and the lists given.
pub fn open(
    validator: ValidatorConfig,
    trusted: TrustedKeys,
    journal_dir: &Path,
    lists: &[PathBuf],
) -> anyhow::Result<Validator> {
    std::fs::create_dir_all(journal_dir).with_context(|| format!("cannot create {}", journal_dir.display()))?;
    let (journal, recovery) = Journal::open(journal_dir, device_id(validator.device), JournalLimits::VALIDATOR)
        .with_context(|| format!("cannot open the journal in {}", journal_dir.display()))?;
    if let Some(torn) = &recovery.torn_tail {
        tracing::warn!(bytes = torn.bytes_discarded, "the journal's last record was torn by a crash and cut away");
    }
    let mut engine = Validator::new(validator, trusted, journal)?;
    for path in lists {
        let file = read_limited(path, LIST_FILE_BYTES_MAX)?;
        let installed = engine.offer_list(&file).with_context(|| format!("{} was refused", path.display()))?;
        tracing::info!(kind = ?installed.kind, version = installed.list_version, "list installed");
    }
    Ok(engine)
}

fn tap(config: &Config, args: &TapArgs) -> anyhow::Result<()> {
    let validator = read_config(&args.validator)?;
    let sam = open_sam(&args.sam, args.sam_passphrase_file.as_deref())?;
    let trusted = validator.trusted_keys()?;
    let journal_dir = journal_dir(config, args.journal.as_deref(), validator.device);
    let at = match &args.at {
        Some(text) => Timestamp::parse_rfc3339(text).map_err(|e| UsageError(format!("--at: {e}")))?,
        None => SystemClock.now(),
    };
    let system_id = config.hsm.system_id.clone();
    let mut engine = open(validator, trusted, &journal_dir, &args.lists)?;
    let keys = KeySource { hsm: &sam, system_id: system_id.as_bytes() };
    for medium in &args.media {
        let decision = tap_one(&mut engine, &sam, &keys, medium, at)?;
        print_decision(medium, &decision, args.json)?;
    }
    Ok(())
}

/// Opens a secure-module profile (from `keys export-sam`); the passphrase comes from
/// `passphrase_file` or a prompt in a terminal.
pub fn open_sam(path: &Path, passphrase_file: Option<&Path>) -> anyhow::Result<SoftHsm> {
    let file = passphrase_file.map(|p| p.display().to_string()).unwrap_or_default();
    let passphrase = crate::secrets::existing(
        "secure-module passphrase",
        &crate::config::Secret::default(),
        &file,
        "--sam-passphrase-file",
    )?;
    SoftHsm::open(path, &passphrase).with_context(|| format!("cannot open {}", path.display()))
}

/// The journal directory of a validator unless one is given.
pub fn journal_dir(config: &Config, given: Option<&Path>, device: u32) -> PathBuf {
    given.map(Path::to_path_buf).unwrap_or_else(|| config.data_dir.join("validators").join(device.to_string()))
}

/// Taps one medium given on the command line.
pub fn tap_one(
    engine: &mut Validator,
    sam: &SoftHsm,
    keys: &KeySource<'_>,
    medium: &str,
    at: Timestamp,
) -> anyhow::Result<Decision> {
    if let Some(rest) = medium.strip_prefix("bank:") {
        let (pan, expiry) = rest.split_once(':').ok_or_else(|| UsageError("bank:PAN:MM/YY".into()))?;
        let expiry = Expiry::parse_mm_yy(expiry).map_err(|e| UsageError(format!("{medium}: {e}")))?;
        let mut card = EmvSimCard::visa(pan, expiry, "VISA").map_err(|e| UsageError(format!("{medium}: {e}")))?;
        return Ok(engine.tap_bank_card(&mut card, sam, &emv_terminal(at)?, at)?);
    }
    if let Some(token) = medium.strip_prefix("phone:") {
        let bytes = hex::decode(token).map_err(|_| UsageError(format!("{medium}: the token is not hex")))?;
        let key = MediumKey::token(MediumKind::PhoneToken, &bytes)
            .ok_or_else(|| UsageError(format!("{medium}: a phone token is 16 or 32 bytes")))?;
        return Ok(engine.tap_token(&key, MediumType::PhoneToken, None, at)?);
    }
    let path = Path::new(medium);
    let sim = SimCard::open(path).with_context(|| format!("cannot open card {medium}"))?;
    let mut card = Desfire::new(sim);
    let decision = engine.tap_card(&mut card, keys, at)?;
    card.into_transport().save_to(path).with_context(|| format!("cannot save card {medium}"))?;
    Ok(decision)
}

/// What a transit terminal tells a bank card: Czech country and currency codes (203), the
/// day, and a fresh unpredictable number.
pub fn emv_terminal(at: Timestamp) -> anyhow::Result<TerminalData> {
    let date = at.datetime().format("%y%m%d").to_string().parse::<u32>().unwrap_or(0);
    let mut unpredictable = [0_u8; 4];
    smartticket_crypto::random_bytes(&mut unpredictable)?;
    Ok(TerminalData::transit(203, 203, date, unpredictable))
}

/// Prints a decision as a line for people, or as JSON.
pub fn print_decision(medium: &str, decision: &Decision, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(decision)?);
        return Ok(());
    }
    let name = Path::new(medium).file_stem().and_then(|s| s.to_str()).unwrap_or(medium);
    let name = if medium.starts_with("bank:") { decision.masked_pan.as_deref().unwrap_or("bank card") } else { name };
    match &decision.outcome {
        Outcome::Accepted { payment, photo_reference, surcharge_minor } => {
            let mut line = format!("{name}: ACCEPTED ({})", serde_json::to_value(payment)?);
            if let Some(photo) = photo_reference {
                line.push_str(&format!("; show photo {photo}"));
            }
            if let Some(surcharge) = surcharge_minor {
                line.push_str(&format!("; surcharge {surcharge} for the rest of the route"));
            }
            println!("{line}");
        }
        Outcome::Declined { reason } => {
            println!("{name}: DECLINED {} ({reason})", reason.code());
        }
    }
    Ok(())
}
