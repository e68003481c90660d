//! The receipt mailed when an order is paid: what was bought, for which medium, valid
//! when, and what happens next (a fare card receives its products at the next tap on an
//! online reader). Queued in the outbox inside the paying transaction.

use std::fmt::Write as _;

use smartticket_core::Timestamp;
use smartticket_core::id::CustomerId;
use smartticket_mail::OutgoingMail;
use smartticket_store::{Tx, sql};

use crate::orders::{OrderHead, OrderItem};
use crate::{Sales, SalesError};

async fn email_of(tx: &mut Tx, customer: CustomerId) -> Result<Option<(String, String)>, SalesError> {
    let row: Option<(String, String)> = sql!(tx.conn(), |c| {
        sqlx::query_as("SELECT email, display_name FROM customers WHERE id = $1 AND NOT disabled")
            .bind(customer.to_db())
            .fetch_optional(c)
            .await
    })?;
    Ok(row)
}

/// The receipt's text.
pub(crate) fn receipt_text(name: &str, head: &OrderHead, items: &[OrderItem], orders_url: &str) -> String {
    let mut body = format!("Hello {name},\n\nthank you for your purchase. Order {}:\n\n", head.id);
    for item in items {
        let quote = &item.quote;
        let _ = write!(body, "{}. {} ({})", item.position, quote.product_name, quote.discount);
        if !quote.zones.is_empty() {
            let zones: Vec<String> = quote.zones.iter().map(u8::to_string).collect();
            let _ = write!(body, ", zones {}", zones.join(", "));
        }
        let _ = writeln!(body, ": {}", quote.price);
        if let (Some(from), Some(until)) = (quote.valid_from, quote.valid_until) {
            let _ = writeln!(body, "   valid {} – {} (UTC)", from.to_rfc3339(), until.to_rfc3339());
        }
        let _ = writeln!(body, "   medium {}", item.medium_id);
    }
    let _ = write!(
        body,
        "\nTotal: {}\n\nProducts bought for a fare card are written to it the next time you hold it to an \
         online reader (a ticket machine, a counter, or a validator marked as online).\n\nYour orders: {orders_url}\n",
        head.total
    );
    body
}

impl Sales {
    /// Queues the receipt of a paid order to its passenger, when it has one with an email.
    pub(crate) async fn mail_receipt(
        &self,
        tx: &mut Tx,
        head: &OrderHead,
        items: &[OrderItem],
        now: Timestamp,
    ) -> Result<(), SalesError> {
        let Some(customer) = head.customer_id else { return Ok(()) };
        let Some((email, name)) = email_of(tx, customer).await? else { return Ok(()) };
        let body = receipt_text(&name, head, items, &format!("{}/orders", self.public_url()));
        let mail = OutgoingMail::new(&email, &format!("Receipt for order {}", head.id), &body)?;
        smartticket_mail::enqueue(tx, now, &mail).await?;
        Ok(())
    }
}
