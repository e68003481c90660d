//! Customer accounts. The email is the account (KIDSOK 3.1.1): unique, and the login.
//! This module owns the credentials and the core record; what customers own (media,
//! orders, discounts) belongs to the selling crate.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_core::Timestamp;
use smartticket_core::id::CustomerId;
use smartticket_core::paging::{Page, PageSpec};
use smartticket_store::{decode_id, decode_time, sql, unique_or};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, AuditCtx, AuditEvent};
use crate::{Identity, IdentityError};

/// A customer account as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Customer {
    /// Id.
    pub id: CustomerId,
    /// The account's email, as entered.
    pub email: String,
    /// The customer's name.
    pub display_name: String,
    /// When the email address was confirmed, if it was.
    pub email_confirmed_at: Option<Timestamp>,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// When the account was opened.
    pub created_at: Timestamp,
}

/// A self-registration in the e-shop.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The email that will be the account's login.
    pub email: String,
    /// The customer's name.
    pub display_name: String,
    /// The password; must pass the password policy.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Search over customers.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerSearch {
    /// Only customers whose email starts with this text (case-insensitive).
    pub email: Option<String>,
}

/// Longest email search prefix, matching the longest email.
const SEARCH_CHARS_MAX: usize = crate::EMAIL_CHARS_MAX;

type CustomerRow = (String, String, String, Option<i64>, bool, i64);
const CUSTOMER_COLUMNS: &str = "id, email, display_name, email_confirmed_at_us, disabled, created_at_us";

fn customer_from_row(row: CustomerRow) -> Result<Customer, IdentityError> {
    let (id, email, display_name, confirmed_us, disabled, created_us) = row;
    Ok(Customer {
        id: decode_id(&id, CustomerId::from_db)?,
        email,
        display_name,
        email_confirmed_at: confirmed_us.map(decode_time).transpose()?,
        disabled,
        created_at: decode_time(created_us)?,
    })
}

/// Escapes `%`, `_` and `\` so user text in a LIKE pattern matches only itself.
fn like_prefix(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 1);
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

impl Identity {
    /// Opens a customer account from the e-shop. The email must not be in use. A mail
    /// asking to confirm the address is queued in the same transaction.
    pub async fn register_customer(&self, ctx: &AuditCtx, new: Registration) -> Result<Customer, IdentityError> {
        let account = self.new_account(&new.email, &new.display_name, &new.password).await?;
        let email = &account.email;
        let id = CustomerId::new();
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let inserted = sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO customers (id, email, email_normalized, display_name, password_hash, created_at_us, \
                 updated_at_us) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(id.to_db())
            .bind(email.as_str())
            .bind(email.normalized())
            .bind(account.display_name.as_str())
            .bind(account.password_hash.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        unique_or(inserted, || IdentityError::EmailTaken)?;
        let link_expires_at = self.mail_email_confirmation(&mut tx, now, id, email, &account.display_name).await?;
        let event = AuditEvent::ok("customer.register", "customer", id)
            .details(json!({ "email": email.as_str(), "confirmation_link_expires_at": link_expires_at }));
        audit::record(&mut tx, ctx, now, event).await?;
        tx.commit().await?;
        self.customer(id).await
    }

    /// One customer.
    pub async fn customer(&self, id: CustomerId) -> Result<Customer, IdentityError> {
        let row: Option<CustomerRow> = sql!(self.db.reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1")))
                .bind(id.to_db())
                .fetch_optional(c)
                .await
        })?;
        row.map(customer_from_row)
            .transpose()?
            .ok_or_else(|| IdentityError::NotFound { kind: "customer", id: id.to_string() })
    }

    /// Customers in order of registration, optionally only those whose email starts
    /// with a given text.
    pub async fn search_customers(
        &self,
        search: &CustomerSearch,
        page: &PageSpec<String>,
    ) -> Result<Page<Customer>, IdentityError> {
        let prefix = search.email.as_deref().map(str::trim).filter(|p| !p.is_empty());
        if prefix.is_some_and(|p| p.chars().count() > SEARCH_CHARS_MAX) {
            return Err(IdentityError::invalid("email", format!("is longer than {SEARCH_CHARS_MAX} characters")));
        }
        let pattern = prefix.map(|p| like_prefix(&p.to_lowercase()));
        let rows: Vec<CustomerRow> = sql!(self.db.reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE ($1 IS NULL OR id > $1) \
                 AND ($2 IS NULL OR email_normalized LIKE $2 ESCAPE '\\') ORDER BY id LIMIT $3"
            )))
            .bind(page.after.as_deref())
            .bind(pattern.as_deref())
            .bind(page.fetch_rows())
            .fetch_all(c)
            .await
        })?;
        let customers = rows.into_iter().map(customer_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(customers, page, |c| c.id.to_db()))
    }
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_prefix("jana"), "jana%");
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
