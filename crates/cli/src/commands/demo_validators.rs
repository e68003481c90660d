//! The demo's validators: three devices on the demo network take the lists the back office
//! published, decide the demo's cards and bank cards offline, see Ivan's card blocked in
//! selling arrive in the next denylist, and upload their journals. The same engine, lists
//! and uploads as `validator run`; only the transport (in process, not HTTP) differs.

use std::path::Path;

use anyhow::Context;
use smartticket_acceptance::engine::{Decision, ListKey, Outcome, Validator, ValidatorConfig};
use smartticket_acceptance::lists::ListKind;
use smartticket_card::desfire::host::Desfire;
use smartticket_card::emv::sim::EmvSimCard;
use smartticket_card::fare::KeySource;
use smartticket_card::sim::SimCard;
use smartticket_core::id::MediumId;
use smartticket_crypto::hsm::Hsm;
use smartticket_crypto::token::Expiry;
use smartticket_fleet::{Fleet, ListDownload, UploadBatch};
use smartticket_identity::AuditCtx;
use smartticket_sales::MediumEvent;
use smartticket_sales::media::Scope;

use super::demo_cards::CARDS_DIR;
use super::validator::{emv_terminal, fare_table, open, route_from};
use crate::config::Config;

/// Petra's Visa, registered in the e-shop with a day ticket on it.
const PETRA_VISA: &str = "4111111111111111";
/// A bank card the network has never seen.
const STRANGER_VISA: &str = "4000000000000002";

/// Runs the validators' part of the demo.
pub async fn run(
    config: &Config,
    services: &smartticket_server::Services,
    hsm: &dyn Hsm,
    ivan_card: MediumId,
) -> anyhow::Result<()> {
    let fleet = &services.fleet;
    let system = AuditCtx::system("demo");
    let (_, catalog) = services.sales.catalog().in_force_at(services.clock.now()).await?;
    let [denylist, greenlist] = fleet.publish_all().await?;
    println!(
        "\nLists: greenlist v{} ({} media), denylist v{} ({} media), signed with list key {}",
        greenlist.version, greenlist.entry_count, denylist.version, denylist.entry_count, greenlist.key_version
    );
    let place = |device: u32, zone: u8, route: Option<&str>, emv_purchases: bool| -> anyhow::Result<ValidatorConfig> {
        Ok(ValidatorConfig {
            device,
            carrier: "DPMO".into(),
            location: u16::try_from(device).unwrap_or(0),
            zone,
            route_zones: match route {
                Some(code) => route_from(&catalog, code, zone)?,
                None => Vec::new(),
            },
            passback_seconds: 60,
            list_age_max_seconds: 48 * 3_600,
            emv_purchases,
            fares: fare_table(&catalog)?,
            list_keys: ListKey::all_from(hsm)?,
        })
    };
    let validators_dir = config.data_dir.join("validators");
    let mut station = install(fleet, place(101, 1, Some("T2"), false)?, &validators_dir).await?;
    let mut bus_r1 = install(fleet, place(102, 1, Some("R1"), true)?, &validators_dir).await?;
    let mut bus_r2 = install(fleet, place(103, 5, Some("R2"), false)?, &validators_dir).await?;
    println!(
        "Validators: 101 tram stop in zone 1; 102 bus on R1, sells single fares to bank cards; 103 bus on R2 in zone 5"
    );

    let keys = KeySource { hsm, system_id: config.hsm.system_id.as_bytes() };
    let cards = config.data_dir.join(CARDS_DIR);
    let now = services.clock.now();
    println!("\nTaps:");
    let card = |engine: &mut Validator, name: &str| -> anyhow::Result<Decision> {
        let mut card = Desfire::new(SimCard::open(&cards.join(format!("{name}.json")))?);
        Ok(engine.tap_card(&mut card, &keys, now)?)
    };
    let bank = |engine: &mut Validator, pan: &str| -> anyhow::Result<Decision> {
        let mut card = EmvSimCard::visa(pan, Expiry::parse_mm_yy("12/29")?, "VISA")?;
        Ok(engine.tap_bank_card(&mut card, hsm, &emv_terminal(now)?, now)?)
    };
    show(101, "Petra's card (month coupon)", &card(&mut station, "petra-card")?);
    show(101, "anonymous card (purse)", &card(&mut station, "anonymous-purse")?);
    show(101, "Petra's Visa (day ticket)", &bank(&mut station, PETRA_VISA)?);
    show(101, "a stranger's Visa", &bank(&mut station, STRANGER_VISA)?);
    show(102, "a stranger's Visa", &bank(&mut bus_r1, STRANGER_VISA)?);
    show(101, "Petra's card, again", &card(&mut station, "petra-card")?);
    show(103, "Ivan's card (zones 1-2 only)", &card(&mut bus_r2, "ivan-card")?);

    // Ivan reports his card lost: blocked in selling, in the next denylist, declined.
    services
        .sales
        .change_status(&system, Scope::Staff, ivan_card, MediumEvent::Block, Some("reported lost (demo)"))
        .await?;
    let [denylist, _] = fleet.publish_all().await?;
    for engine in [&mut station, &mut bus_r1, &mut bus_r2] {
        update(fleet, engine, ListKind::Denylist).await?;
    }
    println!("  -- Ivan's card blocked at the counter; denylist v{} reaches the validators --", denylist.version);
    show(101, "Ivan's card", &card(&mut station, "ivan-card")?);

    println!("\nUploads:");
    for engine in [&mut station, &mut bus_r1, &mut bus_r2] {
        let (records, through) = upload(fleet, &system, engine).await?;
        println!(
            "  validator {}: {records} journal records, the back office holds through {through}",
            engine.config().device
        );
    }
    Ok(())
}

/// A validator with a fresh journal and the lists the back office publishes.
async fn install(fleet: &Fleet, config: ValidatorConfig, dir: &Path) -> anyhow::Result<Validator> {
    let trusted = config.trusted_keys()?;
    let mut engine = open(config.clone(), trusted, &dir.join(config.device.to_string()), &[])?;
    for kind in [ListKind::Greenlist, ListKind::Denylist] {
        update(fleet, &mut engine, kind).await?;
    }
    Ok(engine)
}

/// Brings one list up to date, as `validator run` does over HTTP.
async fn update(fleet: &Fleet, engine: &mut Validator, kind: ListKind) -> anyhow::Result<()> {
    let (greenlist, denylist) = engine.lists();
    let held = match kind {
        ListKind::Greenlist => greenlist,
        ListKind::Denylist => denylist,
    }
    .map(|list| list.list_version);
    if let ListDownload::File { bytes, .. } = fleet.list_file(kind, held).await? {
        engine.offer_list(&bytes).with_context(|| format!("the {kind} was refused"))?;
    }
    Ok(())
}

/// Uploads the journal as validators do, and answers the records sent and the sequence the
/// back office holds through.
async fn upload(fleet: &Fleet, ctx: &AuditCtx, engine: &mut Validator) -> anyhow::Result<(usize, u64)> {
    let mut records = 0;
    let mut through = 0;
    while let Some(batch) = engine
        .journal_mut()
        .next_batch(smartticket_link::BATCH_RECORDS_MAX, smartticket_link::BATCH_PAYLOAD_BYTES_MAX)?
    {
        let upload = UploadBatch {
            batch_id: batch.id.to_string(),
            device_id: hex::encode(batch.id.device_id.0),
            first_sequence: batch.id.sequence_first,
            last_sequence: batch.id.sequence_last,
            records: batch.records.iter().map(|record| record.payload.clone()).collect(),
        };
        let ack = fleet.receive_batch(ctx, &upload).await?;
        anyhow::ensure!(ack.contiguous_through >= batch.id.sequence_last, "the back office did not store the batch");
        engine.journal_mut().acknowledge(batch.id.sequence_last)?;
        records += batch.records.len();
        through = ack.contiguous_through;
    }
    Ok((records, through))
}

fn show(device: u32, who: &str, decision: &Decision) {
    let what = match &decision.outcome {
        Outcome::Accepted { payment, photo_reference, .. } => {
            let by = serde_json::to_value(payment).ok().map(|v| v.to_string()).unwrap_or_default();
            let photo = if photo_reference.is_some() { "; driver sees the photo" } else { "" };
            format!("ACCEPTED {by}{photo}")
        }
        Outcome::Declined { reason } => format!("DECLINED {} ({reason})", reason.code()),
    };
    println!("  {device}  {who:<30} {what}");
}
