//! Cashiers' shifts: a cash drawer opened with a float, every cash payment and refund
//! recorded against it, and closed with the counted cash beside the expected amount.

use serde::Serialize;
use serde_json::json;
use smartticket_core::id::{ShiftId, StaffId};
use smartticket_core::{Currency, Money, Timestamp};
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{Tx, decode_id, decode_time, sql};
use utoipa::ToSchema;

use crate::{Sales, SalesError};

/// Longest counter name.
const COUNTER_CHARS_MAX: usize = 60;

/// A cashier's shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Shift {
    /// Id.
    pub id: ShiftId,
    /// The cashier.
    pub staff_id: StaffId,
    /// Which counter.
    pub counter: String,
    /// Cash in the drawer at opening.
    pub opening_float: Money,
    /// When it opened.
    pub opened_at: Timestamp,
    /// When it closed.
    pub closed_at: Option<Timestamp>,
    /// Cash the drawer should hold: the float plus cash taken minus cash refunded.
    pub expected: Money,
    /// Cash counted at closing.
    pub counted: Option<Money>,
    /// Counted minus expected (negative: missing cash).
    pub difference: Option<Money>,
    /// The cashier's note at closing.
    pub note: Option<String>,
}

type ShiftRow = (String, String, String, String, i64, i64, Option<i64>, Option<i64>, Option<i64>, Option<String>);
const SHIFT_COLUMNS: &str = "id, staff_id, counter, currency, opening_float_minor, opened_at_us, closed_at_us, expected_minor, counted_minor, note";

impl Sales {
    /// Cash taken in a shift so far: approved cash payments minus cash refunds.
    async fn cash_net(tx: &mut Tx, shift: ShiftId) -> Result<i64, SalesError> {
        let taken: Option<i64> = sql!(tx.conn(), |c| {
            sqlx::query_scalar(
                // A refunded cash payment left the drawer again, so only approved ones count.
                "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM payments \
                 WHERE shift_id = $1 AND method = 'cash' AND status = 'approved'",
            )
            .bind(shift.to_db())
            .fetch_one(c)
            .await
        })?;
        Ok(taken.unwrap_or(0))
    }

    async fn fetch_shift(tx: &mut Tx, id: ShiftId) -> Result<Shift, SalesError> {
        let row: Option<ShiftRow> = sql!(tx.conn(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {SHIFT_COLUMNS} FROM shifts WHERE id = $1")))
                .bind(id.to_db())
                .fetch_optional(c)
                .await
        })?;
        let (id_text, staff, counter, currency, float, opened, closed, expected, counted, note) =
            row.ok_or_else(|| SalesError::not_found("shift", id))?;
        let currency =
            Currency::from_code(&currency).map_err(|e| smartticket_store::StoreError::Corrupt(e.to_string()))?;
        let expected_minor = match expected {
            Some(expected) => expected,
            None => float + Self::cash_net(tx, id).await?,
        };
        Ok(Shift {
            id: decode_id(&id_text, ShiftId::from_db)?,
            staff_id: decode_id(&staff, StaffId::from_db)?,
            counter,
            opening_float: Money::new(float, currency),
            opened_at: decode_time(opened)?,
            closed_at: closed.map(decode_time).transpose()?,
            expected: Money::new(expected_minor, currency),
            counted: counted.map(|c| Money::new(c, currency)),
            difference: counted.map(|c| Money::new(c - expected_minor, currency)),
            note,
        })
    }

    /// The cashier's open shift, if any.
    pub(crate) async fn open_shift_of(tx: &mut Tx, staff: StaffId) -> Result<Option<ShiftId>, SalesError> {
        let id: Option<String> = sql!(tx.conn(), |c| {
            sqlx::query_scalar("SELECT id FROM shifts WHERE staff_id = $1 AND closed_at_us IS NULL")
                .bind(staff.to_db())
                .fetch_optional(c)
                .await
        })?;
        id.map(|id| decode_id(&id, ShiftId::from_db).map_err(SalesError::from)).transpose()
    }

    /// Opens a shift with the cash float in the drawer. One open shift per cashier.
    pub async fn open_shift(
        &self,
        ctx: &AuditCtx,
        staff: StaffId,
        counter: &str,
        float: Money,
    ) -> Result<Shift, SalesError> {
        let counter = counter.trim();
        if counter.is_empty() || counter.chars().count() > COUNTER_CHARS_MAX {
            return Err(SalesError::invalid(
                "counter",
                format!("name the counter in at most {COUNTER_CHARS_MAX} characters"),
            ));
        }
        if float.amount_minor < 0 {
            return Err(SalesError::invalid("opening_float", "cannot be negative"));
        }
        let id = ShiftId::new();
        let now = self.now();
        let mut tx = self.db().begin().await?;
        if let Some(open) = Self::open_shift_of(&mut tx, staff).await? {
            return Err(SalesError::Conflict(format!("shift {open} is still open; close it first")));
        }
        sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO shifts (id, staff_id, counter, currency, opening_float_minor, opened_at_us) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id.to_db())
            .bind(staff.to_db())
            .bind(counter)
            .bind(float.currency.code())
            .bind(float.amount_minor)
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let details = json!({ "counter": counter, "opening_float": float });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("shift.open", "shift", id).details(details)).await?;
        let shift = Self::fetch_shift(&mut tx, id).await?;
        tx.commit().await?;
        Ok(shift)
    }

    /// Closes the cashier's open shift with the cash counted; records the difference.
    pub async fn close_shift(
        &self,
        ctx: &AuditCtx,
        staff: StaffId,
        counted: Money,
        note: Option<&str>,
    ) -> Result<Shift, SalesError> {
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let id =
            Self::open_shift_of(&mut tx, staff).await?.ok_or_else(|| SalesError::Conflict("no open shift".into()))?;
        let open = Self::fetch_shift(&mut tx, id).await?;
        if counted.currency != open.opening_float.currency || counted.amount_minor < 0 {
            return Err(SalesError::invalid(
                "counted",
                format!("a non-negative amount in {}", open.opening_float.currency),
            ));
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty()).map(|n| n.chars().take(500).collect::<String>());
        sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE shifts SET closed_at_us = $2, expected_minor = $3, counted_minor = $4, note = $5 WHERE id = $1",
            )
            .bind(id.to_db())
            .bind(now.unix_micros())
            .bind(open.expected.amount_minor)
            .bind(counted.amount_minor)
            .bind(note.as_deref())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let closed = Self::fetch_shift(&mut tx, id).await?;
        let details = json!({ "expected": closed.expected, "counted": counted, "difference": closed.difference });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("shift.close", "shift", id).details(details)).await?;
        tx.commit().await?;
        Ok(closed)
    }

    /// A shift (staff only).
    pub async fn shift(&self, id: ShiftId) -> Result<Shift, SalesError> {
        let mut tx = self.db().begin_read().await?;
        let shift = Self::fetch_shift(&mut tx, id).await?;
        tx.rollback().await?;
        Ok(shift)
    }
}
