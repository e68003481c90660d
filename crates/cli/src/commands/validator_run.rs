//! `smartticket validator run`: one validator in service. Taps come from a PC/SC reader (a
//! fare card or a contactless bank card, told apart by whether the card answers SELECT
//! PPSE) or, for tests and demos, as media named one per line on standard input. With
//! `--server`, a background round every `--sync-seconds` brings the lists up to date and
//! uploads the journal, backing off while the back office cannot be reached; the gate
//! keeps deciding meanwhile from the lists it holds.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use smartticket_acceptance::engine::{Decision, Validator};
use smartticket_acceptance::journal::Backoff;
use smartticket_card::desfire::host::Desfire;
use smartticket_card::fare::KeySource;
use smartticket_card::transport::{PcscTransport, Transport, TransportError};
use smartticket_core::{Clock, SystemClock};
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_link::{BackOffice, StoredLists, sync_lists, upload_pending};

use super::UsageError;
use super::validator::{emv_terminal, journal_dir, open, open_sam, print_decision, read_config, tap_one};
use crate::config::Config;

/// How long one wait for a card lasts before the loop looks at the stop flag again.
const CARD_WAIT: Duration = Duration::from_millis(500);
/// How long a card may stay on the reader after its tap before we complain (and go on).
const CARD_GONE_WAIT: Duration = Duration::from_secs(30);
/// Longest line read from standard input in simulator mode.
const STDIN_LINE_CHARS_MAX: usize = 4096;
/// How long the first list round at start may take before the gate opens without it.
const BOOT_LISTS_WAIT: Duration = Duration::from_secs(10);
/// Upload rounds tried at shutdown before giving up (what is left goes at the next start).
const SHUTDOWN_ROUNDS_MAX: u32 = 3;
/// SELECT by name of the proximity payment system environment (EMV Book B, 3.3).
const SELECT_PPSE: &[u8] = b"\x00\xA4\x04\x00\x0E2PAY.SYS.DDF01\x00";

/// `validator run`
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The validator's configuration file (from `validator init`)
    #[arg(long, value_name = "FILE")]
    pub validator: PathBuf,
    /// The secure-module profile (from `keys export-sam`)
    #[arg(long)]
    pub sam: PathBuf,
    /// A file whose first line is the profile's passphrase [default: ask in a terminal]
    #[arg(long)]
    pub sam_passphrase_file: Option<PathBuf>,
    /// The journal directory (the installed lists are kept beside it) [default:
    /// <data_dir>/validators/<device>]
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// A PC/SC reader (its name or part of it)
    #[arg(long, conflicts_with = "stdin", required_unless_present = "stdin")]
    pub reader: Option<String>,
    /// Read media from standard input instead, one per line, as `validator tap` takes them
    #[arg(long)]
    pub stdin: bool,
    /// The back office's base URL; without it the validator stays offline
    #[arg(long)]
    pub server: Option<String>,
    /// A carrier's or operator's token (better: SMARTTICKET_TOKEN)
    #[arg(long, env = "SMARTTICKET_TOKEN", hide_env_values = true, requires = "server")]
    pub token: Option<String>,
    /// Seconds between rounds with the back office
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub sync_seconds: u64,
    /// Print each decision as one JSON line
    #[arg(long)]
    pub json: bool,
}

/// Runs `validator run` until the reader loop ends (standard input closed, or Ctrl-C).
pub async fn run(config: &Config, args: &RunArgs) -> anyhow::Result<()> {
    let validator = read_config(&args.validator)?;
    let sam = Arc::new(open_sam(&args.sam, args.sam_passphrase_file.as_deref())?);
    let trusted = validator.trusted_keys()?;
    let dir = journal_dir(config, args.journal.as_deref(), validator.device);
    let device = validator.device;
    let mut engine = open(validator, trusted, &dir, &[])?;
    let stored = StoredLists::open(&dir.join("lists"))?;
    for list in stored.restore(&mut engine)? {
        tracing::info!(kind = ?list.kind, version = list.list_version, entries = list.entry_count, "stored list installed");
    }
    let engine = Arc::new(Mutex::new(engine));
    let stop = Arc::new(AtomicBool::new(false));
    let office = match (&args.server, &args.token) {
        (Some(server), Some(token)) => Some(BackOffice::new(server, SecretString::from(token.clone()))?),
        (Some(_), None) => return Err(UsageError("--server needs --token or SMARTTICKET_TOKEN".into()).into()),
        _ => None,
    };
    // At power-on, one quick try for fresh lists before the first passenger; offline, the
    // stored ones serve.
    if let Some(office) = &office {
        match tokio::time::timeout(BOOT_LISTS_WAIT, sync_lists(office, &engine, &stored)).await {
            Ok(Ok(sync)) => tracing::info!(installed = sync.installed.len(), "lists checked at start"),
            Ok(Err(error)) => tracing::warn!(%error, "no fresh lists at start; deciding from the stored ones"),
            Err(_) => tracing::warn!("the back office did not answer at start; deciding from the stored lists"),
        }
    }
    let rounds = office.clone().map(|office| {
        let (engine, stored, stop) = (engine.clone(), stored.clone(), stop.clone());
        tokio::spawn(sync_loop(office, engine, stored, stop, Duration::from_secs(args.sync_seconds)))
    });
    eprintln!("validator {device} running; Ctrl-C stops it");

    let taps = {
        let (engine, sam, stop) = (engine.clone(), sam.clone(), stop.clone());
        let reader = args.reader.clone();
        let (json, system_id) = (args.json, config.hsm.system_id.clone());
        tokio::task::spawn_blocking(move || match reader {
            Some(reader) => reader_loop(&engine, &sam, system_id.as_bytes(), &reader, &stop, json),
            None => stdin_loop(&engine, &sam, system_id.as_bytes(), &stop, json),
        })
    };
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        })
    };
    let tapped = taps.await.context("the reader loop failed")?;
    stop.store(true, Ordering::SeqCst);
    stopper.abort();
    if let Some(rounds) = rounds {
        let _ = rounds.await;
    }
    // Last uploads before going down: what is left stays in the journal for next time.
    if let Some(office) = &office {
        for round in 1..=SHUTDOWN_ROUNDS_MAX {
            match upload_pending(office, &engine).await {
                Ok(report) if !report.more_pending => {
                    eprintln!("journal uploaded through sequence {}", report.acknowledged_through);
                    break;
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("upload at shutdown failed ({round}/{SHUTDOWN_ROUNDS_MAX}): {error}");
                    if !error.is_retryable() {
                        break;
                    }
                }
            }
        }
    }
    tapped
}

/// Rounds with the back office until `stop`: lists first, then uploads; after a failure the
/// next round waits by the upload backoff instead of the usual interval.
async fn sync_loop(
    office: BackOffice,
    engine: Arc<Mutex<Validator>>,
    stored: StoredLists,
    stop: Arc<AtomicBool>,
    interval: Duration,
) {
    let mut failures = 0_u32;
    while !stop.load(Ordering::SeqCst) {
        let round = async {
            let lists = sync_lists(&office, &engine, &stored).await?;
            let uploads = upload_pending(&office, &engine).await?;
            Ok::<_, smartticket_link::LinkError>((lists, uploads))
        };
        let wait = match round.await {
            Ok((lists, uploads)) => {
                failures = 0;
                tracing::info!(
                    installed = lists.installed.len(),
                    uploaded = uploads.records,
                    through = uploads.acknowledged_through,
                    "round with the back office"
                );
                if uploads.more_pending { Duration::ZERO } else { interval }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let random = rand::random::<u64>();
                let delay_ms = Backoff::UPLOAD.delay_ms(failures, random).unwrap_or(interval.as_millis() as u64);
                tracing::warn!(%error, failures, delay_ms, retryable = error.is_retryable(), "round with the back office failed");
                Duration::from_millis(delay_ms)
            }
        };
        // Sleep in short steps so a stop is seen promptly.
        let mut left = wait;
        while !left.is_zero() && !stop.load(Ordering::SeqCst) {
            let step = left.min(Duration::from_millis(200));
            tokio::time::sleep(step).await;
            left = left.saturating_sub(step);
        }
    }
}

fn lock(engine: &Mutex<Validator>) -> anyhow::Result<std::sync::MutexGuard<'_, Validator>> {
    engine.lock().map_err(|_| anyhow::anyhow!("the validator's lock is poisoned"))
}

fn stdin_loop(
    engine: &Mutex<Validator>,
    sam: &SoftHsm,
    system_id: &[u8],
    stop: &AtomicBool,
    json: bool,
) -> anyhow::Result<()> {
    let keys = KeySource { hsm: sam, system_id };
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read standard input")?;
        let medium = line.trim();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if medium.is_empty() || medium.starts_with('#') {
            continue;
        }
        if medium.len() > STDIN_LINE_CHARS_MAX {
            eprintln!("skipped a line longer than {STDIN_LINE_CHARS_MAX} characters");
            continue;
        }
        let decided = tap_one(&mut *lock(engine)?, sam, &keys, medium, SystemClock.now());
        match decided {
            Ok(decision) => print_decision(medium, &decision, json)?,
            // A bad line is the operator's typo, not a reason to stop the gate.
            Err(error) => eprintln!("{medium}: {error:#}"),
        }
    }
    Ok(())
}

fn reader_loop(
    engine: &Mutex<Validator>,
    sam: &SoftHsm,
    system_id: &[u8],
    reader: &str,
    stop: &AtomicBool,
    json: bool,
) -> anyhow::Result<()> {
    let readers = PcscTransport::list_readers().context("cannot reach pcscd")?;
    if !readers.iter().any(|name| name.contains(reader)) {
        return Err(UsageError(format!("no reader matches {reader:?}; pcscd knows {readers:?}")).into());
    }
    let keys = KeySource { hsm: sam, system_id };
    while !stop.load(Ordering::SeqCst) {
        let name = match PcscTransport::wait_for_card(reader, CARD_WAIT) {
            Ok(name) => name,
            Err(TransportError::NoCard) => continue,
            Err(error) => return Err(error).context("waiting for a card"),
        };
        let mut card = match PcscTransport::connect(&name) {
            Ok(card) => card,
            Err(error) => {
                // Pulled away before we connected: nothing happened, wait for the next.
                tracing::info!(%error, "card left before the tap");
                continue;
            }
        };
        let decision = tap(engine, sam, &keys, &mut card)?;
        print_decision("card", &decision, json)?;
        if let Err(error) = card.wait_until_gone(CARD_GONE_WAIT) {
            tracing::warn!(%error, "card left on the reader");
        }
    }
    Ok(())
}

/// One tap from a reader: a bank card if it answers SELECT PPSE, else a fare card.
fn tap(
    engine: &Mutex<Validator>,
    sam: &SoftHsm,
    keys: &KeySource<'_>,
    card: &mut PcscTransport,
) -> anyhow::Result<Decision> {
    let at = SystemClock.now();
    let is_bank_card = card.transmit(SELECT_PPSE).is_ok_and(|answer| answer.ends_with(&[0x90, 0x00]));
    let mut engine = lock(engine)?;
    if is_bank_card {
        return Ok(engine.tap_bank_card(card, sam, &emv_terminal(at)?, at)?);
    }
    let mut desfire = Desfire::new(card);
    Ok(engine.tap_card(&mut desfire, keys, at)?)
}
