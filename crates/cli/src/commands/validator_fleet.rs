//! `smartticket validator fleet`: many validators against a running back office, to see the
//! whole loop under load and faults. Each simulated device is a real `Validator` with its
//! own journal and stored lists; passengers are drawn at random from the greenlist and
//! denylist the devices downloaded, the fare card images given, and made-up bank cards and
//! phone tokens. Faults: cards torn mid-transaction, devices offline for a while, upload
//! answers lost (the batch is sent again). At the end every journal is uploaded and the
//! back office is asked what it stored: each device's records exactly once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use secrecy::SecretString;
use serde::Serialize;
use smartticket_acceptance::engine::{Decision, MediumType, Outcome, Validator};
use smartticket_acceptance::journal::Backoff;
use smartticket_acceptance::lists::{MediumKey, MediumKind};
use smartticket_card::desfire::host::Desfire;
use smartticket_card::emv::sim::EmvSimCard;
use smartticket_card::fare::KeySource;
use smartticket_card::sim::{SimCard, Tear};
use smartticket_core::{Clock, SystemClock, Timestamp};
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::token::Expiry;
use smartticket_link::{BackOffice, LinkError, StoredLists, sync_lists, upload_pending};

use super::UsageError;
use super::validator::{device_id, emv_terminal, open, open_sam, read_config};
use crate::config::Config;

/// Most simulated devices: each holds its lists in memory.
const DEVICES_MAX: u32 = 256;
/// Most taps in one run.
const TAPS_MAX: u64 = 10_000_000;
/// Most listed media drawn from each list as passengers.
const LISTED_MEDIA_MAX: usize = 10_000;
/// Most fare card images loaded from `--cards`.
const CARD_IMAGES_MAX: usize = 1_000;
/// Largest card image read.
const CARD_IMAGE_BYTES_MAX: u64 = 1024 * 1024;
/// Rounds with the back office in a run (taps are spread over them).
const ROUNDS: u64 = 20;
/// Final upload attempts per device before the run is declared failed.
const FINAL_ATTEMPTS_MAX: u32 = 8;
/// How long to wait for the back office's first lists.
const FIRST_LISTS_WAIT: Duration = Duration::from_secs(60);

/// `validator fleet`
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// The back office's base URL
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// A carrier's or operator's token (better: SMARTTICKET_TOKEN)
    #[arg(long, env = "SMARTTICKET_TOKEN", hide_env_values = true)]
    pub token: String,
    /// A validator configuration (from `validator init`) every device copies, with its own
    /// device number
    #[arg(long, value_name = "FILE")]
    pub validator: PathBuf,
    /// The secure-module profile (from `keys export-sam`)
    #[arg(long)]
    pub sam: PathBuf,
    /// A file whose first line is the profile's passphrase
    #[arg(long)]
    pub sam_passphrase_file: Option<PathBuf>,
    /// How many validators
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=DEVICES_MAX as i64))]
    pub devices: u32,
    /// How many taps in all
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=TAPS_MAX))]
    pub taps: u64,
    /// A directory of fare card images (`*.json`) passengers carry; they are read, not changed
    #[arg(long)]
    pub cards: Option<PathBuf>,
    /// The first device number [default: random, so runs never share a journal id]
    #[arg(long)]
    pub first_device: Option<u32>,
    /// Seed for the passengers and faults [default: random]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Chance, in percent, that a device is offline for a round
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u8).range(0..=90))]
    pub offline_percent: u8,
    /// Chance, in percent, that a fare card is pulled away mid-transaction
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub tear_percent: u8,
    /// Chance, in percent, that the answer to an upload is lost (the batch goes again)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub lost_answer_percent: u8,
    /// Simulated hours the taps are spread over
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=24))]
    pub hours: u32,
    /// Where the devices' journals go [default: <data_dir>/fleet/<first device>]
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// One simulated device.
struct Device {
    number: u32,
    engine: Mutex<Validator>,
    stored: StoredLists,
    offline_rounds_left: u32,
    taps: u64,
}

/// A passenger's medium.
enum Medium {
    Listed(MediumKey, MediumType),
    Card(usize),
    BankCard(String),
    Phone([u8; 16]),
}

/// What the run did, as printed.
#[derive(Debug, Default, Serialize)]
struct Report {
    devices: u32,
    first_device: u32,
    seed: u64,
    taps: u64,
    outcomes: BTreeMap<String, u64>,
    media: BTreeMap<String, u64>,
    tears: u64,
    offline_device_rounds: u64,
    lost_answers: u64,
    batches_uploaded: u64,
    records_uploaded: u64,
    lists_installed: u64,
    greenlist_version: u64,
    denylist_version: u64,
    records_written: u64,
    records_stored: u64,
    devices_verified: u32,
    seconds: f64,
    taps_per_second: f64,
}

/// Runs `validator fleet`.
pub async fn run(config: &Config, args: &FleetArgs) -> anyhow::Result<()> {
    let template = read_config(&args.validator)?;
    let sam = open_sam(&args.sam, args.sam_passphrase_file.as_deref())?;
    let office = BackOffice::new(&args.server, SecretString::from(args.token.clone()))?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let first_device = args.first_device.unwrap_or_else(|| 0x8000_0000 | (rand::random::<u32>() & 0x7FFF_FF00));
    if first_device.checked_add(args.devices).is_none() {
        return Err(
            UsageError(format!("--first-device {first_device} leaves no room for {} devices", args.devices)).into()
        );
    }
    let dir = args.dir.clone().unwrap_or_else(|| config.data_dir.join("fleet").join(first_device.to_string()));
    if dir.exists() {
        return Err(UsageError(format!("{} exists: each run starts with fresh journals", dir.display())).into());
    }
    let started = Instant::now();
    let mut report = Report { devices: args.devices, first_device, seed, ..Report::default() };

    let mut devices = Vec::new();
    for index in 0..args.devices {
        let mut device_config = template.clone();
        device_config.device = first_device + index;
        let trusted = device_config.trusted_keys()?;
        let device_dir = dir.join(device_config.device.to_string());
        let engine = open(device_config, trusted, &device_dir.join("journal"), &[])?;
        let stored = StoredLists::open(&device_dir.join("lists"))?;
        devices.push(Device {
            number: first_device + index,
            engine: Mutex::new(engine),
            stored,
            offline_rounds_left: 0,
            taps: 0,
        });
    }
    for device in &devices {
        first_lists(&office, device).await?;
    }
    let (listed, denied) = passengers(&devices)?;
    let mut cards = match &args.cards {
        Some(dir) => load_cards(dir)?,
        None => Vec::new(),
    };
    eprintln!(
        "{} devices from {first_device}; {} listed media, {} denylisted, {} fare cards; seed {seed}",
        args.devices,
        listed.len(),
        denied.len(),
        cards.len()
    );

    let keys = KeySource { hsm: &sam, system_id: config.hsm.system_id.as_bytes() };
    let start = SystemClock.now();
    let span_us = i64::from(args.hours) * 3_600_000_000;
    let taps_per_round = args.taps.div_ceil(ROUNDS).max(1);
    let progress = indicatif::ProgressBar::new(args.taps);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} taps {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut last: Vec<Option<Medium>> = devices.iter().map(|_| None).collect();
    for tap in 0..args.taps {
        let at = offset(
            start,
            span_us.saturating_mul(i64::try_from(tap).unwrap_or(i64::MAX)) / i64::try_from(args.taps).unwrap_or(1),
        );
        let index = rng.random_range(0..devices.len());
        let (Some(device), Some(previous)) = (devices.get_mut(index), last.get_mut(index)) else {
            continue;
        };
        // One in ten passengers taps twice: the second is passback.
        let medium = match previous.take() {
            Some(medium) if rng.random_ratio(1, 10) => medium,
            _ => draw(&mut rng, &listed, &denied, cards.len()),
        };
        let decision =
            tap_medium(device, &medium, &mut cards, &sam, &keys, at, &mut rng, args.tear_percent, &mut report)?;
        *report.outcomes.entry(outcome_label(&decision)).or_default() += 1;
        *previous = Some(medium);
        device.taps += 1;
        report.taps += 1;
        progress.inc(1);
        if (tap + 1) % taps_per_round == 0 {
            round(&office, &mut devices, &mut rng, args, &mut report).await?;
        }
    }
    progress.finish_and_clear();

    // Everyone back online: upload everything, then ask the back office what it holds.
    for device in &mut devices {
        device.offline_rounds_left = 0;
        upload_all(&office, device, &mut report).await?;
        verify(&office, device, &mut report).await?;
    }
    for device in devices.iter().take(1) {
        let engine = device.engine.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let (greenlist, denylist) = engine.lists();
        report.greenlist_version = greenlist.map_or(0, |list| list.list_version);
        report.denylist_version = denylist.map_or(0, |list| list.list_version);
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.taps_per_second = report.taps as f64 / report.seconds.max(f64::EPSILON);
    print_report(&report, &dir, args.json)
}

fn offset(start: Timestamp, micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(start.unix_micros().saturating_add(micros)).unwrap_or(start)
}

async fn first_lists(office: &BackOffice, device: &Device) -> anyhow::Result<()> {
    let deadline = Instant::now() + FIRST_LISTS_WAIT;
    loop {
        let sync = sync_lists(office, &device.engine, &device.stored).await;
        match sync {
            Ok(sync) if sync.not_published.is_empty() => return Ok(()),
            Ok(_) | Err(LinkError::NotReady) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(sync) => {
                anyhow::bail!("the back office published no {:?} within {FIRST_LISTS_WAIT:?}", sync.not_published)
            }
            Err(error) => return Err(error).context(format!("device {}: first lists", device.number)),
        }
    }
}

/// Passengers from the lists: listed tokens (they hold coupons) and denylisted media.
/// Media drawn from a list, with how they are presented.
type Listed = Vec<(MediumKey, MediumType)>;

fn passengers(devices: &[Device]) -> anyhow::Result<(Listed, Listed)> {
    let Some(device) = devices.first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let engine = device.engine.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let token_type = |key: &MediumKey| match key.kind() {
        MediumKind::BankCardToken => Some(MediumType::BankCard),
        MediumKind::PhoneToken => Some(MediumType::PhoneToken),
        MediumKind::QrToken => Some(MediumType::QrToken),
        MediumKind::CardNumber | MediumKind::CardUid => None,
    };
    let listed = engine
        .greenlist()
        .map(|list| {
            list.iter().filter_map(|(key, _)| token_type(key).map(|kind| (*key, kind))).take(LISTED_MEDIA_MAX).collect()
        })
        .unwrap_or_default();
    let denied = engine
        .denylist()
        .map(|list| {
            list.iter().filter_map(|(key, _)| token_type(key).map(|kind| (*key, kind))).take(LISTED_MEDIA_MAX).collect()
        })
        .unwrap_or_default();
    Ok((listed, denied))
}

fn load_cards(dir: &Path) -> anyhow::Result<Vec<SimCard>> {
    let mut cards = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") && cards.len() < CARD_IMAGES_MAX {
            let size = std::fs::metadata(&path)?.len();
            if size > CARD_IMAGE_BYTES_MAX {
                return Err(
                    UsageError(format!("{} is larger than {CARD_IMAGE_BYTES_MAX} bytes", path.display())).into()
                );
            }
            let card = SimCard::open(&path).with_context(|| format!("cannot open card {}", path.display()))?;
            // A copy that saves nowhere: the passengers' own card files stay as they are.
            cards.push(SimCard::new(card.image().clone()));
        }
    }
    Ok(cards)
}

fn draw(
    rng: &mut StdRng,
    listed: &[(MediumKey, MediumType)],
    denied: &[(MediumKey, MediumType)],
    cards: usize,
) -> Medium {
    let roll = rng.random_range(0..100_u8);
    match roll {
        0..40 if !listed.is_empty() => {
            let (key, kind) = listed.get(rng.random_range(0..listed.len())).copied().unwrap_or(listed_fallback());
            Medium::Listed(key, kind)
        }
        40..65 if cards > 0 => Medium::Card(rng.random_range(0..cards)),
        65..70 if !denied.is_empty() => {
            let (key, kind) = denied.get(rng.random_range(0..denied.len())).copied().unwrap_or(listed_fallback());
            Medium::Listed(key, kind)
        }
        70..85 => Medium::BankCard(random_pan(rng)),
        _ => Medium::Phone(rng.random()),
    }
}

fn listed_fallback() -> (MediumKey, MediumType) {
    (MediumKey::card_number(0), MediumType::FareCard)
}

/// A Luhn-valid 16-digit Visa test-range number.
fn random_pan(rng: &mut StdRng) -> String {
    let mut digits: Vec<u32> = vec![4];
    digits.extend((0..14).map(|_| rng.random_range(0..10)));
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, digit)| if position % 2 == 0 { (digit * 2) % 9 + u32::from(*digit == 9) * 9 } else { *digit })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits.iter().map(|digit| char::from_digit(*digit, 10).unwrap_or('0')).collect()
}

#[allow(clippy::too_many_arguments)]
fn tap_medium(
    device: &mut Device,
    medium: &Medium,
    cards: &mut [SimCard],
    sam: &SoftHsm,
    keys: &KeySource<'_>,
    at: Timestamp,
    rng: &mut StdRng,
    tear_percent: u8,
    report: &mut Report,
) -> anyhow::Result<Decision> {
    let engine = device.engine.get_mut().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let (label, decision) = match medium {
        Medium::Listed(key, kind) => ("listed token", engine.tap_token(key, *kind, None, at)?),
        Medium::Phone(token) => {
            let key = MediumKey::token(MediumKind::PhoneToken, token).unwrap_or(MediumKey::card_number(0));
            ("unknown phone token", engine.tap_token(&key, MediumType::PhoneToken, None, at)?)
        }
        Medium::BankCard(pan) => {
            let expiry = Expiry::parse_mm_yy("12/30").map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut card = EmvSimCard::visa(pan, expiry, "VISA").map_err(|e| anyhow::anyhow!("{e}"))?;
            ("unknown bank card", engine.tap_bank_card(&mut card, sam, &emv_terminal(at)?, at)?)
        }
        Medium::Card(index) => {
            let Some(card) = cards.get_mut(*index) else {
                anyhow::bail!("no card {index}");
            };
            if rng.random_range(0..100_u8) < tear_percent {
                let command = rng.random_range(1..=12);
                card.arm_tear(if rng.random() { Tear::AfterCommand(command) } else { Tear::BeforeCommand(command) });
                report.tears += 1;
            }
            let mut desfire = Desfire::new(&mut *card);
            let decision = engine.tap_card(&mut desfire, keys, at)?;
            // Back in the field for the next tap, whatever happened.
            card.tap();
            ("fare card", decision)
        }
    };
    *report.media.entry(label.to_owned()).or_default() += 1;
    Ok(decision)
}

fn outcome_label(decision: &Decision) -> String {
    match &decision.outcome {
        Outcome::Accepted { payment, .. } => format!("accepted: {}", payment.by()),
        Outcome::Declined { reason } => format!("declined: {}", reason.code()),
    }
}

/// One round with the back office for every device that is online; some go offline.
async fn round(
    office: &BackOffice,
    devices: &mut [Device],
    rng: &mut StdRng,
    args: &FleetArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    for device in devices.iter_mut() {
        if device.offline_rounds_left > 0 {
            device.offline_rounds_left -= 1;
            report.offline_device_rounds += 1;
            continue;
        }
        if rng.random_range(0..100_u8) < args.offline_percent {
            device.offline_rounds_left = rng.random_range(1..=3);
            continue;
        }
        if rng.random_range(0..100_u8) < args.lost_answer_percent {
            lose_an_answer(office, device, report).await?;
        }
        let lists = sync_lists(office, &device.engine, &device.stored).await;
        match lists {
            Ok(sync) => report.lists_installed += sync.installed.len() as u64,
            Err(error) if error.is_retryable() => tracing::info!(%error, "lists not fetched this round"),
            Err(error) => return Err(error).context(format!("device {}: lists", device.number)),
        }
        match upload_pending(office, &device.engine).await {
            Ok(uploaded) => {
                report.batches_uploaded += u64::from(uploaded.batches);
                report.records_uploaded += uploaded.records;
            }
            Err(error) if error.is_retryable() => tracing::info!(%error, "upload failed this round"),
            Err(error) => return Err(error).context(format!("device {}: upload", device.number)),
        }
    }
    Ok(())
}

/// Sends the next batch and drops the answer, as if the connection broke on the way back:
/// the journal keeps the records and sends them again (with any newer ones).
async fn lose_an_answer(office: &BackOffice, device: &mut Device, report: &mut Report) -> anyhow::Result<()> {
    let batch = device
        .engine
        .get_mut()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .journal_mut()
        .next_batch(smartticket_link::BATCH_RECORDS_MAX, smartticket_link::BATCH_PAYLOAD_BYTES_MAX)?;
    if let Some(batch) = batch {
        let _lost = office.upload(&batch).await;
        report.lost_answers += 1;
    }
    Ok(())
}

async fn upload_all(office: &BackOffice, device: &mut Device, report: &mut Report) -> anyhow::Result<()> {
    let mut failures = 0;
    loop {
        match upload_pending(office, &device.engine).await {
            Ok(uploaded) => {
                report.batches_uploaded += u64::from(uploaded.batches);
                report.records_uploaded += uploaded.records;
                if !uploaded.more_pending {
                    return Ok(());
                }
            }
            Err(error) if error.is_retryable() && failures < FINAL_ATTEMPTS_MAX => {
                failures += 1;
                let delay_ms = Backoff::UPLOAD.delay_ms(failures, rand::random()).unwrap_or(1_000);
                tracing::warn!(%error, failures, delay_ms, "final upload failed; retrying");
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            Err(error) => return Err(error).context(format!("device {}: final upload", device.number)),
        }
    }
}

async fn verify(office: &BackOffice, device: &mut Device, report: &mut Report) -> anyhow::Result<()> {
    let engine = device.engine.get_mut().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let written = engine.journal_mut().sequence_next() - 1;
    let acknowledged = engine.journal_mut().sequence_acknowledged();
    report.records_written += written;
    if written == 0 {
        return Ok(());
    }
    let id = hex::encode(device_id(device.number).0);
    let stored = office.device_uploads(&id).await?.unwrap_or_default();
    report.records_stored += stored.records_stored;
    anyhow::ensure!(
        acknowledged == written && stored.contiguous_through == written && stored.records_stored == written,
        "device {}: wrote {written} records, acknowledged {acknowledged}; the back office holds {} through {}",
        device.number,
        stored.records_stored,
        stored.contiguous_through
    );
    report.devices_verified += 1;
    Ok(())
}

fn print_report(report: &Report, dir: &Path, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!(
        "{} taps on {} validators (devices {}–{}) in {:.1} s ({:.0} taps/s), seed {}",
        report.taps,
        report.devices,
        report.first_device,
        report.first_device + report.devices - 1,
        report.seconds,
        report.taps_per_second,
        report.seed
    );
    println!("\nMedia:");
    for (medium, count) in &report.media {
        println!("  {medium:<24} {count:>9}");
    }
    println!("\nDecisions:");
    for (outcome, count) in &report.outcomes {
        println!("  {outcome:<32} {count:>9}");
    }
    println!(
        "\nFaults: {} cards torn, {} device-rounds offline, {} upload answers lost (sent again)",
        report.tears, report.offline_device_rounds, report.lost_answers
    );
    println!(
        "Back office: {} batches, {} records uploaded; {} list files installed (greenlist v{}, denylist v{})",
        report.batches_uploaded,
        report.records_uploaded,
        report.lists_installed,
        report.greenlist_version,
        report.denylist_version
    );
    println!(
        "Verified: {} of {} devices; {} records written, {} stored, each exactly once",
        report.devices_verified, report.devices, report.records_written, report.records_stored
    );
    println!("Journals: {}", dir.display());
    Ok(())
}
