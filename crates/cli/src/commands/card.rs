//! `smartticket card …`: simulated cards for development, demos and tests — create a blank
//! card image, personalise it, load and debit it, and show what is on it (read through the
//! secure session with the read key, as a service-centre reader would). Also real media in
//! a PC/SC reader: relay a delivery session (`tap`), read a bank card to its token (`emv`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use smartticket_card::desfire::host::Desfire;
use smartticket_card::emv::{self, TerminalData};
use smartticket_card::fare::ops::{self, CardState, Load, Terminal};
use smartticket_card::fare::records::{Contract, ContractKind, Environment, LogRecord};
use smartticket_card::fare::{FareError, KeySource};
use smartticket_card::sim::SimCard;
use smartticket_core::{Clock, SystemClock, Timestamp};
use smartticket_crypto::hsm::Hsm;
use smartticket_crypto::hsm::soft::SoftHsm;

use super::UsageError;
use crate::args::{CardCommand, Profile};
use crate::config::Config;

/// Device id written in the log records of cards changed from the command line.
const CLI_DEVICE: u32 = 0;

fn parse_uid(text: &str) -> anyhow::Result<[u8; 7]> {
    let bytes = hex::decode(text.trim()).map_err(|_| UsageError(format!("`{text}` is not hex")))?;
    bytes.try_into().map_err(|_| UsageError("a UID is 7 bytes (14 hex digits)".into()).into())
}

fn open_card(path: &Path) -> anyhow::Result<Desfire<SimCard>> {
    Ok(Desfire::new(SimCard::open(path).with_context(|| format!("cannot open card {}", path.display()))?))
}

fn terminal() -> Terminal {
    Terminal { device: CLI_DEVICE, location: 0, at: SystemClock.now() }
}

/// Runs a `card` command.
pub fn run(config: &Config, command: &CardCommand) -> anyhow::Result<()> {
    match command {
        CardCommand::New { uid, out } => {
            if out.exists() {
                return Err(UsageError(format!("{} already exists", out.display())).into());
            }
            let mut card = SimCard::blank(parse_uid(uid)?);
            card.save_to(out)?;
            println!("blank card {} written to {}", uid.to_uppercase(), out.display());
            Ok(())
        }
        CardCommand::Show { file, json } => {
            let hsm = super::keys::open(config)?;
            show(&mut open_card(file)?, hsm.as_ref(), config, *json)
        }
        CardCommand::Personalise { file, card_number, profile, expires } => {
            let hsm = super::keys::open(config)?;
            let keys = KeySource { hsm: hsm.as_ref(), system_id: config.hsm.system_id.as_bytes() };
            let expires = Timestamp::parse_rfc3339(&format!("{expires}T23:59:59Z"))
                .map_err(|_| UsageError(format!("--expires `{expires}` is not a date like 2031-12-31")))?;
            let environment = Environment {
                card_number: *card_number,
                profile: match profile {
                    Profile::Anonymous => 0,
                    Profile::Named => 1,
                    Profile::Social => 2,
                },
                discount_category: 0,
                expires,
                issuer: 1,
            };
            let mut card = open_card(file)?;
            let proof = ops::personalise(&mut card, &keys, &keys, &environment)?;
            println!("personalised card {} (transaction counter {})", hex::encode_upper(proof.uid), proof.tmc);
            Ok(())
        }
        CardCommand::Load { file, purse_minor, period_days, trips, zones, product } => {
            let hsm = super::keys::open(config)?;
            let keys = KeySource { hsm: hsm.as_ref(), system_id: config.hsm.system_id.as_bytes() };
            let now = SystemClock.now();
            let mut contracts = Vec::new();
            let zone_bits = zones.iter().try_fold(0_u32, |bits, zone| match zone {
                1..=32 => Ok(bits | 1 << (zone - 1)),
                _ => Err(UsageError(format!("zone {zone} is outside 1–32"))),
            })?;
            let serial = u32::try_from(now.unix_micros() % i64::from(u32::MAX)).unwrap_or(1);
            if let Some(days) = period_days {
                let until = now.checked_add(chrono::Duration::days(i64::from(*days))).context("date out of range")?;
                contracts.push((contract(ContractKind::Period, *product, serial, zone_bits, now, until), 0));
            }
            if let Some(trips) = trips {
                let until = now.checked_add(chrono::Duration::days(365)).context("date out of range")?;
                contracts.push((
                    contract(ContractKind::Trips, *product, serial.wrapping_add(1), zone_bits, now, until),
                    *trips,
                ));
            }
            if contracts.is_empty() && *purse_minor == 0 {
                return Err(UsageError("nothing to load: give --purse-minor, --period-days or --trips".into()).into());
            }
            let load = Load { contracts, purse_credit: *purse_minor };
            let loaded = ops::load(&mut open_card(file)?, &keys, &load, terminal())?;
            println!(
                "loaded (slots {:?}); purse {} minor units; transaction counter {}",
                loaded.slots, loaded.balance, loaded.proof.tmc
            );
            Ok(())
        }
        CardCommand::Tap { .. } => Err(UsageError("`card tap` runs on the async path".into()).into()),
        CardCommand::Debit { file, minor } => {
            let hsm = super::keys::open(config)?;
            let keys = KeySource { hsm: hsm.as_ref(), system_id: config.hsm.system_id.as_bytes() };
            let debited = ops::debit_purse(&mut open_card(file)?, &keys, *minor, terminal())?;
            println!(
                "debited {minor}; purse {} minor units; transaction counter {}",
                debited.balance, debited.proof.tmc
            );
            Ok(())
        }
        CardCommand::Emv { reader, sam, sam_passphrase_file, wait_seconds, json } => {
            let sam = open_sam(sam, sam_passphrase_file.as_deref())?;
            read_bank_card(&sam, reader, Duration::from_secs(*wait_seconds), *json)
        }
    }
}

/// Terminal country code (9F1A) and transaction currency (5F2A) a bank card is read with:
/// ISO 3166-1 and ISO 4217 numeric 203, Czechia and the koruna, as the validators use.
/// `card emv` only identifies the card (amount zero), so neither changes what it reads.
const EMV_COUNTRY: u16 = 203;
const EMV_CURRENCY: u16 = 203;

/// Opens a secure-module profile (from `keys export-sam`) as the validator does.
fn open_sam(path: &Path, passphrase_file: Option<&Path>) -> anyhow::Result<SoftHsm> {
    let file = passphrase_file.map(|p| p.display().to_string()).unwrap_or_default();
    let passphrase = crate::secrets::existing(
        "secure-module passphrase",
        &crate::config::Secret::default(),
        &file,
        "--sam-passphrase-file",
    )?;
    SoftHsm::open(path, &passphrase).with_context(|| format!("cannot open {}", path.display()))
}

/// Waits for a bank card in `reader`, reads it and prints what a gate keeps of it: the
/// masked PAN, expiry, application and the token from the secure module. The full PAN
/// stays inside the [`emv::EmvCard`], which wipes it; it is neither printed nor logged.
fn read_bank_card(sam: &SoftHsm, reader: &str, wait: Duration, json: bool) -> anyhow::Result<()> {
    use smartticket_card::TransportError;
    use smartticket_card::transport::PcscTransport;
    // Name the readers when none matches: waiting for a card in a reader that does not
    // exist would only end in a timeout that hides the typo.
    let readers = PcscTransport::list_readers()?;
    if !readers.iter().any(|name| name.contains(reader)) {
        let known = if readers.is_empty() { "pcscd knows none".to_owned() } else { readers.join(", ") };
        return Err(UsageError(format!("no PC/SC reader name contains {reader:?}; readers: {known}")).into());
    }
    let found = match PcscTransport::wait_for_card(reader, wait) {
        Err(TransportError::NoCard) => {
            anyhow::bail!("no card in a reader matching {reader:?} within {} s", wait.as_secs())
        }
        other => other?,
    };
    let mut transport = PcscTransport::connect(&found)?;
    let mut unpredictable = [0_u8; 4];
    smartticket_crypto::random_bytes(&mut unpredictable)?;
    let today = SystemClock.now().datetime().format("%y%m%d").to_string();
    let today: u32 = today.parse().with_context(|| format!("today ({today}) is not a YYMMDD date"))?;
    let terminal = TerminalData::transit(EMV_COUNTRY, EMV_CURRENCY, today, unpredictable);
    let card = emv::read_card(&mut transport, &terminal).with_context(|| format!("cannot read the card in {found}"))?;
    let token = smartticket_acceptance::engine::bank_card_token(sam, &card)
        .context("the secure module cannot tokenise the card")?;
    let expiry = format!("{:02}/{:02}", card.expiry().month, card.expiry().year);
    let aid = hex::encode_upper(card.aid());
    tracing::info!(reader = %found, masked_pan = %card.masked_pan(), %aid, "bank card read");
    if json {
        let out = serde_json::json!({
            "reader": found,
            "masked_pan": card.masked_pan(),
            "expiry": expiry,
            "aid": aid,
            "label": card.label(),
            "preferred_name": card.preferred_name(),
            "token": token.to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("bank card in {found}");
    println!("  PAN          {}", card.masked_pan());
    println!("  expiry       {expiry}");
    let name = match (card.label(), card.preferred_name()) {
        (Some(label), Some(preferred)) => format!("{label} ({preferred})"),
        (Some(name), None) | (None, Some(name)) => name.to_owned(),
        (None, None) => "(no label)".to_owned(),
    };
    println!("  application  {name} · AID {aid}");
    println!("  token        {token}");
    Ok(())
}

/// Steps a relay session may take before the client gives up: a delivery is a few dozen
/// APDUs, so this only stops a server that never finishes.
const TAP_STEPS_MAX: usize = 500;

/// Relays a delivery session between the server and a card (an image, or a PC/SC reader),
/// printing what the session wrote.
pub async fn tap(file: Option<&Path>, reader: Option<&str>, server: &str, token: &str) -> anyhow::Result<()> {
    use smartticket_card::transport::{PcscTransport, Transport};
    let mut card: Box<dyn Transport + Send> = match (file, reader) {
        (Some(file), _) => {
            Box::new(SimCard::open(file).with_context(|| format!("cannot open card {}", file.display()))?)
        }
        (None, Some(reader)) => Box::new(PcscTransport::connect(reader)?),
        (None, None) => return Err(UsageError("give a card image or --reader".into()).into()),
    };
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
    let base = server.trim_end_matches('/');
    let mut step: serde_json::Value =
        answer(client.post(format!("{base}/api/v1/delivery/sessions")).bearer_auth(token).send().await?).await?;
    let session =
        step.pointer("/session_id").and_then(|v| v.as_str()).context("the server started no session")?.to_owned();
    for _ in 0..TAP_STEPS_MAX {
        let Some(command) = step.pointer("/command").and_then(|v| v.as_str()) else {
            if let Some(error) = step.pointer("/error").and_then(|v| v.as_str()) {
                anyhow::bail!("the card session failed: {error}");
            }
            let message = step.pointer("/report/message").and_then(|v| v.as_str());
            println!("{}", message.unwrap_or("done"));
            let balance = (
                step.pointer("/report/balance/amount_minor").and_then(|v| v.as_i64()),
                step.pointer("/report/balance/currency").and_then(|v| v.as_str()),
            );
            if let (Some(minor), Some(code)) = balance
                && let Ok(currency) = smartticket_core::Currency::from_code(code)
            {
                println!("purse: {}", smartticket_core::Money::new(minor, currency));
            }
            return Ok(());
        };
        let command = hex::decode(command).context("the server sent a command that is not hex")?;
        let response = tokio::task::block_in_place(|| card.transmit(&command))?;
        let body = serde_json::json!({ "response": hex::encode_upper(response) });
        let url = format!("{base}/api/v1/delivery/sessions/{session}/responses");
        step = answer(client.post(url).bearer_auth(token).json(&body).send().await?).await?;
    }
    anyhow::bail!("the session did not end within {TAP_STEPS_MAX} steps")
}

/// The JSON of a successful answer, or the problem's detail as the error.
async fn answer(response: reqwest::Response) -> anyhow::Result<serde_json::Value> {
    let status = response.status();
    let body: serde_json::Value = response.json().await.context("the server's answer is not JSON")?;
    if status.is_success() {
        return Ok(body);
    }
    let detail = body.pointer("/detail").or(body.pointer("/title")).and_then(|v| v.as_str()).unwrap_or("no detail");
    anyhow::bail!("the server refused ({status}): {detail}")
}

fn contract(kind: ContractKind, product: u32, serial: u32, zones: u32, from: Timestamp, until: Timestamp) -> Contract {
    Contract {
        kind,
        product,
        serial,
        zones,
        valid_from: from,
        valid_until: until,
        discount_category: 0,
        blocked: false,
    }
}

/// Prints what is on a card, read with the read key.
pub fn show(card: &mut Desfire<SimCard>, hsm: &dyn Hsm, config: &Config, json: bool) -> anyhow::Result<()> {
    let keys = KeySource { hsm, system_id: config.hsm.system_id.as_bytes() };
    let uid = hex::encode_upper(card.transport_mut().uid());
    match ops::read(card, &keys) {
        Err(FareError::NotPersonalised) => {
            if json {
                println!("{}", serde_json::json!({ "uid": uid, "personalised": false }));
            } else {
                println!("card {uid}: blank (no SmartTicket application)");
            }
            Ok(())
        }
        Err(other) => Err(other.into()),
        Ok(state) if json => {
            println!("{}", serde_json::to_string_pretty(&state)?);
            Ok(())
        }
        Ok(state) => {
            print_state(&state);
            Ok(())
        }
    }
}

fn day(at: Timestamp) -> String {
    at.datetime().format("%Y-%m-%d").to_string()
}

fn zones(bits: u32) -> String {
    (1..=32_u32).filter(|zone| bits & (1 << (zone - 1)) != 0).map(|z| z.to_string()).collect::<Vec<_>>().join(",")
}

fn print_state(state: &CardState) {
    let env = &state.environment;
    let profile = ["anonymous", "named", "social"].get(usize::from(env.profile)).copied().unwrap_or("?");
    println!(
        "card {} · number {} · {profile} · expires {}",
        hex::encode_upper(state.uid),
        env.card_number,
        day(env.expires)
    );
    println!("  transaction counter {} · key versions {:?}", state.tmc, state.key_versions);
    println!("  purse {} minor units", state.purse);
    for (slot, contract) in state.contracts.iter().enumerate() {
        let Some(contract) = contract else { continue };
        let trips = match contract.kind {
            ContractKind::Trips => format!(" · {} trips left", state.trips.get(slot).copied().unwrap_or(0)),
            _ => String::new(),
        };
        println!(
            "  slot {slot}: {:?} · product {} · zones {} · {} → {}{trips}{}",
            contract.kind,
            contract.product,
            zones(contract.zones),
            day(contract.valid_from),
            day(contract.valid_until),
            if contract.blocked { " · BLOCKED" } else { "" }
        );
    }
    for record in &state.log {
        print_log(record);
    }
}

fn print_log(record: &LogRecord) {
    println!(
        "  log #{:<4} {} {:?} · device {} · place {} · {:+} → {}",
        record.sequence,
        record.at.datetime().format("%Y-%m-%d %H:%M:%S"),
        record.event,
        record.device,
        record.location,
        record.amount,
        record.balance
    );
}
