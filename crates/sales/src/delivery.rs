//! Deferred delivery: what was paid for a fare card is written to it the next time it is
//! held to an online reader (a counter, a ticket machine, a phone with NFC). The reader
//! only relays APDUs; the secure session runs here with the credit key in the HSM.
//!
//! The relay protocol is plain HTTP: starting a session answers with the first command
//! APDU, and each posted card answer gets the next command, until the session reports what
//! it did. The card steps run on the blocking pool over a [`RelayTransport`]; every wait
//! is bounded, so a reader that goes quiet ends its session.
//!
//! Torn writes: before writing, a `writing` row records the card's transaction counter and
//! what is to be written. The card commits all of it or none (DESFire transactions), but
//! if the answer to the commit is lost the server cannot know which; the row stays
//! `writing` and the next session reads the card and settles it: the contract serials on
//! the card, or a load record with the next sequence number, say the write happened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use smartticket_card::desfire::host::Desfire;
use smartticket_card::fare::KeySource;
use smartticket_card::fare::ops::{self, CardState, Load, Loaded, Terminal};
use smartticket_card::fare::records::{Contract, ContractKind, LogEvent};
use smartticket_card::fare::{CONTRACT_SLOTS, PURSE_BALANCE_MAX};
use smartticket_card::transport::Transport;
use smartticket_card::transport::TransportError;
use smartticket_card::transport::relay::{RelayEnd, relay};
use smartticket_core::id::{DeliverySessionId, EntitlementId, MediumId};
use smartticket_core::{Money, Timestamp};
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{Tx, decode_id, sql};
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::entitlements::{self, Entitlement, EntitlementKind, EntitlementStatus};
use crate::media::{MediumKind, Scope, fetch_by_uid};
use crate::{Sales, SalesError};

/// Relay sessions open at once: each holds a blocking thread while it waits for its
/// reader, so the bound keeps quiet readers from exhausting the pool.
pub const SESSIONS_MAX: usize = 64;
/// Longest command or answer APDU relayed (an extended-length APDU with 64 KiB data).
pub const APDU_BYTES_MAX: usize = 65_544;
/// The device id written into the card log by the online loader.
pub const LOADER_DEVICE_ID: u32 = 0x00FF_0001;
/// Finished sessions are forgotten after this long.
const FINISHED_KEEP: Duration = Duration::from_secs(60);

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeliveryReport {
    /// The card's medium; absent when the card is unknown here.
    pub medium_id: Option<MediumId>,
    /// The card's printed number.
    pub printed_number: Option<String>,
    /// Entitlements written now.
    pub delivered: Vec<EntitlementId>,
    /// Entitlements found already on the card from an interrupted earlier session.
    pub recovered: Vec<EntitlementId>,
    /// Entitlements still waiting (no free slot, purse limit), with why.
    pub still_pending: Vec<String>,
    /// The purse balance after.
    pub balance: Option<Money>,
    /// The card's transaction counter after.
    pub tmc: u32,
    /// In words, for the reader's screen.
    pub message: String,
}

/// One step of a relay session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeliveryStep {
    /// The session.
    pub session_id: DeliverySessionId,
    /// The next command APDU to send to the card, hex; absent when finished.
    pub command: Option<String>,
    /// What the session did, once finished.
    pub report: Option<DeliveryReport>,
    /// Why the session failed, once finished without a report.
    pub error: Option<String>,
}

struct Live {
    owner: Scope,
    end: RelayEnd,
    task: Option<JoinHandle<Result<DeliveryReport, SalesError>>>,
    finished_at: Option<Instant>,
}

/// The open relay sessions.
#[derive(Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<DeliverySessionId, Arc<AsyncMutex<Live>>>>,
}

impl Sessions {
    fn get(&self, id: DeliverySessionId) -> Option<Arc<AsyncMutex<Live>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }

    fn remove(&self, id: DeliverySessionId) {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// Forgets finished sessions and refuses a new one beyond the bound.
    fn admit(&self, id: DeliverySessionId, live: Live) -> Result<Arc<AsyncMutex<Live>>, SalesError> {
        let mut map = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, session| match session.try_lock() {
            Ok(session) => {
                let done = session.task.as_ref().is_none_or(JoinHandle::is_finished);
                !(done && session.finished_at.is_none_or(|at| at.elapsed() > FINISHED_KEEP))
            }
            Err(_) => true,
        });
        if map.len() >= SESSIONS_MAX {
            return Err(SalesError::TooManyAttempts(format!(
                "{SESSIONS_MAX} card sessions are open; try again shortly"
            )));
        }
        let live = Arc::new(AsyncMutex::new(live));
        map.insert(id, live.clone());
        Ok(live)
    }
}

/// What the server decided to write, recorded before writing.
struct Plan {
    medium: MediumId,
    printed_number: Option<String>,
    delivery: Option<DeliverySessionId>,
    load: Load,
    entitlements: Vec<EntitlementId>,
    recovered: Vec<EntitlementId>,
    still_pending: Vec<String>,
}

/// Whether a slot can take a new contract at `now`.
fn slot_free(state: &CardState, slot: usize, now: Timestamp) -> bool {
    match state.contracts.get(slot).copied().flatten() {
        None => true,
        Some(contract) => contract.valid_until <= now && state.trips.get(slot).copied().unwrap_or(0) == 0,
    }
}

fn contract_for(entitlement: &Entitlement, codes: (u32, u16)) -> Result<(Contract, i32), SalesError> {
    let missing = |what: &str| SalesError::Conflict(format!("entitlement {} has no {what}", entitlement.id));
    let serial = entitlement.contract_serial.ok_or_else(|| missing("contract serial"))?;
    let trips = entitlement.trips.map(i32::from).unwrap_or(0);
    let contract = Contract {
        kind: if entitlement.trips.is_some() { ContractKind::Trips } else { ContractKind::Period },
        product: codes.0,
        serial,
        zones: entitlements::zones_mask(&entitlement.zones),
        valid_from: entitlement.valid_from.ok_or_else(|| missing("validity start"))?,
        valid_until: entitlement.valid_until.ok_or_else(|| missing("validity end"))?,
        discount_category: codes.1,
        blocked: false,
    };
    Ok((contract, trips))
}

fn card_error(error: impl std::fmt::Display) -> SalesError {
    SalesError::Card(error.to_string())
}

impl Sales {
    /// The card codes (product, discount category) of an entitlement, as quoted when it
    /// was sold: a later catalogue version never changes what a sold contract says.
    async fn card_codes(entitlement: &Entitlement, tx: &mut Tx) -> Result<(u32, u16), SalesError> {
        let quote_json: String = sql!(tx.conn(), |c| {
            sqlx::query_scalar("SELECT quote FROM entitlements WHERE id = $1")
                .bind(entitlement.id.to_db())
                .fetch_one(c)
                .await
        })?;
        let quote: smartticket_catalog::Quote = serde_json::from_str(&quote_json)
            .map_err(|e| SalesError::Conflict(format!("entitlement {}: {e}", entitlement.id)))?;
        Ok((quote.card_product, quote.card_discount))
    }

    /// Settles an interrupted delivery of `medium` from what the card shows, then plans
    /// what to write now and records it as `writing`.
    async fn plan_delivery(
        &self,
        ctx: &AuditCtx,
        uid: [u8; 7],
        state: &CardState,
        now: Timestamp,
    ) -> Result<Option<Plan>, SalesError> {
        let mut tx = self.db().begin().await?;
        let Some(record) = fetch_by_uid(&mut tx, &hex::encode_upper(uid)).await? else {
            return Ok(None);
        };
        let medium = record.medium.id;
        let recovered = self.settle_interrupted(&mut tx, ctx, medium, state, now).await?;
        let mut plan = Plan {
            medium,
            printed_number: record.medium.printed_number.clone(),
            delivery: None,
            load: Load { contracts: Vec::new(), purse_credit: 0 },
            entitlements: Vec::new(),
            recovered,
            still_pending: Vec::new(),
        };
        if !matches!(record.medium.status, crate::MediumStatus::Inactive | crate::MediumStatus::Active) {
            tx.commit().await?;
            plan.still_pending.push(format!("the card is {}; nothing is written to it", record.medium.status));
            return Ok(Some(plan));
        }
        let pending: Vec<Entitlement> = entitlements::of_medium(&mut tx, medium)
            .await?
            .into_iter()
            .filter(|e| e.status == EntitlementStatus::PendingDelivery)
            .collect();
        let mut free_slots = (0..CONTRACT_SLOTS).filter(|slot| slot_free(state, *slot, now)).count();
        let mut balance = i64::from(state.purse);
        for entitlement in pending {
            match entitlement.kind {
                EntitlementKind::Contract => {
                    let serial = entitlement.contract_serial;
                    if state.contracts.iter().flatten().any(|c| Some(c.serial) == serial) {
                        // Already on the card (an earlier session committed without telling us).
                        entitlements::mark_delivered(&mut tx, entitlement.id, None, now).await?;
                        plan.recovered.push(entitlement.id);
                        continue;
                    }
                    if entitlement.valid_until.is_some_and(|until| until <= now) {
                        plan.still_pending
                            .push(format!("{} ended before it could be written", entitlement.product_name));
                        continue;
                    }
                    if free_slots == 0 {
                        plan.still_pending
                            .push(format!("{}: the card has no free contract slot", entitlement.product_name));
                        continue;
                    }
                    free_slots -= 1;
                    let codes = Self::card_codes(&entitlement, &mut tx).await?;
                    plan.load.contracts.push(contract_for(&entitlement, codes)?);
                    plan.entitlements.push(entitlement.id);
                }
                EntitlementKind::PurseLoad => {
                    let amount = entitlement.amount.amount_minor;
                    let total = i64::from(plan.load.purse_credit) + amount;
                    if balance + amount > i64::from(PURSE_BALANCE_MAX) || i32::try_from(total).is_err() {
                        plan.still_pending.push(format!("{}: the purse would exceed its limit", entitlement.amount));
                        continue;
                    }
                    balance += amount;
                    plan.load.purse_credit = i32::try_from(total).unwrap_or(0);
                    plan.entitlements.push(entitlement.id);
                }
                EntitlementKind::EventTicket => {}
            }
        }
        if !plan.entitlements.is_empty() {
            let delivery = DeliverySessionId::new();
            let ids = serde_json::to_string(&plan.entitlements).map_err(|e| SalesError::Conflict(e.to_string()))?;
            let inserted = sql!(tx.conn(), |c| {
                sqlx::query(
                    "INSERT INTO deliveries (id, medium_id, status, tmc_before, entitlement_ids, purse_credit_minor, started_at_us) \
                     VALUES ($1, $2, 'writing', $3, $4, $5, $6)",
                )
                .bind(delivery.to_db())
                .bind(medium.to_db())
                .bind(i64::from(state.tmc))
                .bind(ids.as_str())
                .bind(i64::from(plan.load.purse_credit))
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
            });
            smartticket_store::unique_or(inserted, || {
                SalesError::Conflict("another reader is writing to this card".into())
            })?;
            plan.delivery = Some(delivery);
        }
        tx.commit().await?;
        Ok(Some(plan))
    }

    /// Settles a `writing` delivery left by an interrupted session, from the card's state.
    async fn settle_interrupted(
        &self,
        tx: &mut Tx,
        ctx: &AuditCtx,
        medium: MediumId,
        state: &CardState,
        now: Timestamp,
    ) -> Result<Vec<EntitlementId>, SalesError> {
        let row: Option<(String, i64, String, i64)> = sql!(tx.conn(), |c| {
            sqlx::query_as(
                "SELECT id, tmc_before, entitlement_ids, purse_credit_minor FROM deliveries WHERE medium_id = $1 AND status = 'writing'",
            )
            .bind(medium.to_db())
            .fetch_optional(c)
            .await
        })?;
        let Some((id, tmc_before, ids, credit)) = row else { return Ok(Vec::new()) };
        let delivery = decode_id(&id, DeliverySessionId::from_db)?;
        let ids: Vec<EntitlementId> =
            serde_json::from_str(&ids).map_err(|e| SalesError::Conflict(format!("delivery {id}: {e}")))?;
        let next_sequence = u32::try_from(tmc_before.saturating_add(1)).unwrap_or(u32::MAX);
        // The load's log record carries the counter value it committed under; a later
        // transaction may have pushed it out of the cyclic log, in which case the counter
        // alone cannot tell, and the contract serials decide.
        let logged = state
            .log
            .iter()
            .any(|r| r.event == LogEvent::Load && r.sequence == next_sequence && i64::from(r.amount) == credit);
        let mut serials_seen = false;
        let mut serials_missing = false;
        for entitlement in &ids {
            let entitlement = entitlements::fetch(tx, *entitlement).await?;
            if let Some(serial) = entitlement.contract_serial {
                if state.contracts.iter().flatten().any(|c| c.serial == serial) {
                    serials_seen = true;
                } else {
                    serials_missing = true;
                }
            }
        }
        let written = i64::from(state.tmc) > tmc_before && (logged || (serials_seen && !serials_missing));
        let status = if written { "completed" } else { "not_written" };
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE deliveries SET status = $2, finished_at_us = $3, detail = 'settled from the card at the next session' WHERE id = $1")
                .bind(delivery.to_db())
                .bind(status)
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        let mut recovered = Vec::new();
        if written {
            for entitlement in ids {
                if entitlements::fetch(tx, entitlement).await?.status == EntitlementStatus::PendingDelivery {
                    entitlements::mark_delivered(tx, entitlement, Some(delivery), now).await?;
                    recovered.push(entitlement);
                }
            }
        }
        let details = json!({ "medium": medium, "written": written, "card_tmc": state.tmc, "tmc_before": tmc_before });
        audit::record(tx, ctx, now, AuditEvent::ok("delivery.settle", "delivery", delivery).details(details)).await?;
        Ok(recovered)
    }

    /// Records the outcome of the write.
    async fn finish_delivery(
        &self,
        ctx: &AuditCtx,
        plan: &Plan,
        outcome: &Result<Loaded, SalesError>,
        now: Timestamp,
    ) -> Result<(), SalesError> {
        let Some(delivery) = plan.delivery else { return Ok(()) };
        let mut tx = self.db().begin().await?;
        match outcome {
            Ok(loaded) => {
                sql!(tx.conn(), |c| {
                    sqlx::query(
                        "UPDATE deliveries SET status = 'completed', finished_at_us = $2, tmc_after = $3, tmv = $4, tmi = $5 \
                         WHERE id = $1 AND status = 'writing'",
                    )
                    .bind(delivery.to_db())
                    .bind(now.unix_micros())
                    .bind(i64::from(loaded.proof.tmc))
                    .bind(hex::encode_upper(loaded.proof.tmv))
                    .bind(hex::encode_upper(&loaded.proof.tmi))
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
                })?;
                for entitlement in &plan.entitlements {
                    entitlements::mark_delivered(&mut tx, *entitlement, Some(delivery), now).await?;
                }
                sql!(tx.conn(), |c| {
                    sqlx::query("UPDATE media SET card_tmc = $2 WHERE id = $1")
                        .bind(plan.medium.to_db())
                        .bind(i64::from(loaded.proof.tmc))
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected())
                })?;
                let details = json!({ "medium": plan.medium, "entitlements": plan.entitlements, "tmc": loaded.proof.tmc, "purse_credit": plan.load.purse_credit });
                audit::record(
                    &mut tx,
                    ctx,
                    now,
                    AuditEvent::ok("delivery.complete", "delivery", delivery).details(details),
                )
                .await?;
            }
            Err(error) => {
                // Refused before any write (no commit was sent) → not written; otherwise the
                // commit's fate is unknown and the row stays `writing` for the next session.
                let before_commit = matches!(error, SalesError::Conflict(_));
                let detail: String = error.to_string().chars().take(300).collect();
                let status = if before_commit { "not_written" } else { "writing" };
                sql!(tx.conn(), |c| {
                    sqlx::query("UPDATE deliveries SET status = $2, detail = $3, finished_at_us = $4 WHERE id = $1 AND status = 'writing'")
                        .bind(delivery.to_db())
                        .bind(status)
                        .bind(detail.as_str())
                        .bind(before_commit.then_some(now.unix_micros()))
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected())
                })?;
                let failed = AuditEvent {
                    outcome: audit::Outcome::Failed,
                    ..AuditEvent::ok("delivery.interrupted", "delivery", delivery)
                };
                audit::record(&mut tx, ctx, now, failed.details(json!({ "medium": plan.medium, "error": detail })))
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The whole delivery on a card reachable through `card`, on the calling (blocking)
    /// thread; database steps run on `runtime`. Audited under `ctx`: whoever holds the
    /// reader.
    pub fn deliver_blocking<T: Transport>(
        &self,
        ctx: &AuditCtx,
        runtime: &tokio::runtime::Handle,
        card: &mut Desfire<T>,
        system_id: &[u8],
    ) -> Result<DeliveryReport, SalesError> {
        let keys = KeySource { hsm: self.hsm(), system_id };
        let state = ops::read(card, &keys).map_err(card_error)?;
        let currency = runtime.block_on(self.purse_currency())?;
        let now = self.now();
        let Some(plan) = runtime.block_on(self.plan_delivery(ctx, state.uid, &state, now))? else {
            return Ok(DeliveryReport {
                medium_id: None,
                printed_number: None,
                delivered: Vec::new(),
                recovered: Vec::new(),
                still_pending: Vec::new(),
                balance: Some(Money::new(i64::from(state.purse), currency)),
                tmc: state.tmc,
                message: "this card is not registered here".into(),
            });
        };
        let mut report = DeliveryReport {
            medium_id: Some(plan.medium),
            printed_number: plan.printed_number.clone(),
            delivered: Vec::new(),
            recovered: plan.recovered.clone(),
            still_pending: plan.still_pending.clone(),
            balance: Some(Money::new(i64::from(state.purse), currency)),
            tmc: state.tmc,
            message: String::new(),
        };
        if plan.delivery.is_none() {
            report.message = if report.recovered.is_empty() {
                "nothing to write: the card is up to date".into()
            } else {
                format!("{} product(s) were already on the card", report.recovered.len())
            };
            return Ok(report);
        }
        let terminal = Terminal { device: LOADER_DEVICE_ID, location: 0, at: now };
        let outcome = ops::load(card, &keys, &plan.load, terminal).map_err(|e| match e {
            smartticket_card::fare::FareError::Refused(why) => SalesError::Conflict(why),
            other => card_error(other),
        });
        runtime.block_on(self.finish_delivery(ctx, &plan, &outcome, self.now()))?;
        let loaded = outcome?;
        report.delivered = plan.entitlements.clone();
        report.balance = Some(Money::new(i64::from(loaded.balance), currency));
        report.tmc = loaded.proof.tmc;
        report.message = format!("{} product(s) written to the card", report.delivered.len());
        Ok(report)
    }

    async fn purse_currency(&self) -> Result<smartticket_core::Currency, SalesError> {
        let today = self.catalog().today().await?;
        Ok(self.catalog().effective_on(today).await?.currency())
    }

    /// Starts a relay session for `scope` (the reader's user) and returns the first
    /// command for the card.
    pub async fn start_delivery(
        &self,
        ctx: &AuditCtx,
        scope: Scope,
        system_id: Arc<[u8]>,
    ) -> Result<DeliveryStep, SalesError> {
        let ctx = ctx.clone();
        let id = DeliverySessionId::new();
        let timeout = Duration::from_millis(self.policy().delivery_step_timeout_ms);
        let (transport, end) = relay(format!("delivery session {id}"), timeout);
        let sales = self.clone();
        let runtime = tokio::runtime::Handle::current();
        let live = Live { owner: scope, end, task: None, finished_at: None };
        let session = self.deliveries().admit(id, live)?;
        let mut guard = session.lock().await;
        guard.task = Some(tokio::task::spawn_blocking(move || {
            let mut card = Desfire::new(transport);
            sales.deliver_blocking(&ctx, &runtime, &mut card, &system_id)
        }));
        self.next_step(id, &mut guard).await
    }

    /// Passes the card's answer to session `id` and returns the next command, or the
    /// report when the session is done.
    pub async fn continue_delivery(
        &self,
        scope: Scope,
        id: DeliverySessionId,
        answer: &[u8],
    ) -> Result<DeliveryStep, SalesError> {
        if answer.len() > APDU_BYTES_MAX || answer.len() < 2 {
            return Err(SalesError::invalid("response", format!("an APDU answer has 2 to {APDU_BYTES_MAX} bytes")));
        }
        let session = self.deliveries().get(id).ok_or_else(|| SalesError::not_found("delivery session", id))?;
        let mut guard = session.lock().await;
        if guard.owner != scope && scope != Scope::Staff {
            return Err(SalesError::not_found("delivery session", id));
        }
        if guard.finished_at.is_some() {
            return Err(SalesError::Conflict(format!("delivery session {id} has finished")));
        }
        guard
            .end
            .answers
            .send(Ok(answer.to_vec()))
            .map_err(|_| SalesError::Conflict(format!("delivery session {id} has ended")))?;
        self.next_step(id, &mut guard).await
    }

    /// Tells session `id` the card left the field.
    pub async fn abort_delivery(&self, scope: Scope, id: DeliverySessionId) -> Result<DeliveryStep, SalesError> {
        let session = self.deliveries().get(id).ok_or_else(|| SalesError::not_found("delivery session", id))?;
        let mut guard = session.lock().await;
        if guard.owner != scope && scope != Scope::Staff {
            return Err(SalesError::not_found("delivery session", id));
        }
        let _ = guard.end.answers.send(Err(TransportError::CardRemoved));
        self.next_step(id, &mut guard).await
    }

    async fn next_step(&self, id: DeliverySessionId, live: &mut Live) -> Result<DeliveryStep, SalesError> {
        let wait = Duration::from_millis(self.policy().delivery_step_timeout_ms.saturating_mul(2));
        let command = tokio::time::timeout(wait, live.end.commands.recv())
            .await
            .map_err(|_| SalesError::Card("the card session did not continue in time".into()))?;
        if let Some(command) = command {
            return Ok(DeliveryStep {
                session_id: id,
                command: Some(hex::encode_upper(command)),
                report: None,
                error: None,
            });
        }
        // The host dropped its transport: the session is over.
        live.finished_at = Some(Instant::now());
        let task =
            live.task.take().ok_or_else(|| SalesError::Conflict(format!("delivery session {id} has finished")))?;
        let outcome = task.await.map_err(|e| SalesError::Card(format!("the card session stopped: {e}")))?;
        self.deliveries().remove(id);
        Ok(match outcome {
            Ok(report) => DeliveryStep { session_id: id, command: None, report: Some(report), error: None },
            Err(SalesError::Store(e)) => return Err(SalesError::Store(e)),
            Err(error) => DeliveryStep { session_id: id, command: None, report: None, error: Some(error.to_string()) },
        })
    }

    /// Delivers to a card in a local transport (the demo, tests, a counter's own reader),
    /// on the blocking pool.
    pub async fn deliver_local<T: Transport + Send + 'static>(
        &self,
        ctx: &AuditCtx,
        card: Desfire<T>,
        system_id: Arc<[u8]>,
    ) -> Result<(DeliveryReport, Desfire<T>), SalesError> {
        let sales = self.clone();
        let ctx = ctx.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut card = card;
            let report = sales.deliver_blocking(&ctx, &runtime, &mut card, &system_id);
            report.map(|r| (r, card))
        })
        .await
        .map_err(|e| SalesError::Card(format!("the card session stopped: {e}")))?
    }

    /// A medium's pending deliveries, for "tap your card to receive it" screens.
    pub async fn pending_deliveries(&self, scope: Scope, medium: MediumId) -> Result<Vec<Entitlement>, SalesError> {
        let mut tx = self.db().begin_read().await?;
        let record = crate::media::fetch_visible(&mut tx, scope, medium).await?;
        let pending = if record.medium.kind == MediumKind::FareCard {
            entitlements::of_medium(&mut tx, medium)
                .await?
                .into_iter()
                .filter(|e| e.status == EntitlementStatus::PendingDelivery)
                .collect()
        } else {
            Vec::new()
        };
        tx.rollback().await?;
        Ok(pending)
    }
}
