//! Account flows through the mailbox on SQLite and PostgreSQL: email confirmation, accounts
//! opened at a counter, and password resets. Mail is delivered through a capturing
//! transport, and links are followed the way a customer would: by reading the mail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use smartticket_core::paging::PageRequest;
use smartticket_core::{Clock, ManualClock, Timestamp};
use smartticket_identity::accounts::{
    ACCOUNT_TOKEN_PREFIX, COUNTER_SET_PASSWORD_TTL_HOURS, PASSWORD_RESET_MAILS_PER_HOUR_MAX, PASSWORD_RESET_TTL_MINUTES,
};
use smartticket_identity::audit::{self, AuditEntry, AuditFilter, Outcome};
use smartticket_identity::customers::Registration;
use smartticket_identity::sessions::{LoginRequest, Realm};
use smartticket_identity::{
    AccountError, Actor, AuditCtx, Identity, IdentityError, IdentityPolicy, LinkRefused, StaffRole,
};
use smartticket_mail::{MailFilter, MailTransport, Mailer, QueuedMail, TransportError};
use smartticket_store::{Db, sql};

const GOOD_PASSWORD: &str = "Tramvaj jede na Hlavní nádraží";
const NEW_PASSWORD: &str = "Nový vlak do Olomouce 2026";
const MINUTE_US: i64 = 60 * 1_000_000;
const HOUR_US: i64 = 60 * MINUTE_US;

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

fn start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-21T08:00:00Z").unwrap()
}

fn service(db: &Db) -> (Identity, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let policy = IdentityPolicy { public_url: "https://eshop.example.cz/".into(), ..IdentityPolicy::default() };
    let identity = Identity::new(db.clone(), clock.clone(), policy).unwrap();
    (identity, clock)
}

fn anonymous() -> AuditCtx {
    AuditCtx::new(Actor::Anonymous)
}

fn cashier() -> AuditCtx {
    AuditCtx::new(Actor::Staff { id: smartticket_core::id::StaffId::new(), role: StaffRole::Cashier })
}

/// Keeps every mail handed to it.
#[derive(Default)]
struct Inbox(Mutex<Vec<QueuedMail>>);

impl MailTransport for Inbox {
    async fn send(&self, mail: &QueuedMail) -> Result<(), TransportError> {
        self.0.lock().unwrap().push(mail.clone());
        Ok(())
    }
}

/// Delivers everything due now and returns what was sent.
async fn deliver(identity: &Identity) -> Vec<QueuedMail> {
    let mailer = Mailer::new(identity.db().clone(), identity.clock().clone(), Inbox::default());
    mailer.deliver_due(identity.clock().now()).await.unwrap();
    mailer.transport().0.lock().unwrap().clone()
}

/// The single mail delivered now, and the token of the link in it.
async fn one_link(identity: &Identity, to: &str, page: &str) -> (QueuedMail, SecretString) {
    let mails = deliver(identity).await;
    assert_eq!(mails.len(), 1, "expected one mail, got {mails:?}");
    let mail = mails.into_iter().next().unwrap();
    assert_eq!(mail.to(), to);
    let prefix = format!("https://eshop.example.cz/{page}?token=");
    let start = mail.body().find(&prefix).unwrap_or_else(|| panic!("no {page} link in {}", mail.body())) + prefix.len();
    let token: String = mail.body()[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    assert!(token.starts_with(ACCOUNT_TOKEN_PREFIX), "{token}");
    (mail, secret(&token))
}

async fn register(identity: &Identity, email: &str) -> smartticket_identity::customers::Customer {
    let registration =
        Registration { email: email.into(), display_name: "Jana Nováková".into(), password: secret(GOOD_PASSWORD) };
    identity.register_customer(&anonymous(), registration).await.unwrap()
}

async fn login(identity: &Identity, email: &str, password: &str) -> Result<SecretString, IdentityError> {
    let request = LoginRequest { realm: Realm::Customer, email: email.into(), password: secret(password) };
    identity.login(&anonymous(), request).await.map(|g| g.token)
}

async fn audit_of(db: &Db, action: &str) -> Vec<AuditEntry> {
    let filter = AuditFilter { action: Some(action.into()), ..Default::default() };
    audit::list(db, &filter, &PageRequest { limit: Some(500), cursor: None }.spec().unwrap()).await.unwrap().items
}

async fn outbox_size(db: &Db) -> usize {
    let page = PageRequest { limit: Some(500), cursor: None }.spec().unwrap();
    smartticket_mail::list(db, &MailFilter::default(), &page).await.unwrap().items.len()
}

fn refused(result: Result<impl std::fmt::Debug, AccountError>) -> LinkRefused {
    match result {
        Err(AccountError::Link(why)) => why,
        other => panic!("expected a refused link, got {other:?}"),
    }
}

smartticket_store::backend_tests! {
    async fn registration_mails_a_link_that_confirms_the_email_once(db) {
        let (identity, clock) = service(&db);
        let customer = register(&identity, "Jana@Example.cz").await;
        assert_eq!(customer.email_confirmed_at, None);
        let (mail, token) = one_link(&identity, "Jana@Example.cz", "confirm-email").await;
        assert_eq!(mail.subject(), "Confirm your email address for SmartTicket");
        assert!(mail.body().contains("Hello Jana Nováková"));
        assert!(mail.body().contains("until 2026-11-28 08:00 UTC"), "the expiry is in the mail: {}", mail.body());
        clock.advance_micros(HOUR_US);
        let confirmed = identity.confirm_email(&anonymous(), &token).await.unwrap();
        assert_eq!(confirmed.id, customer.id);
        assert_eq!(confirmed.email_confirmed_at, Some(clock.now()));
        assert_eq!(identity.customer(customer.id).await.unwrap().email_confirmed_at, Some(clock.now()));
        assert_eq!(refused(identity.confirm_email(&anonymous(), &token).await), LinkRefused::Used, "a link works once");
        let entries = audit_of(&db, "customer.confirm_email").await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].actor_kind, "customer", "the link's holder acts as the customer");
        assert_eq!(entries[0].target_id, Some(customer.id.to_string()));
        let registered = audit_of(&db, "customer.register").await;
        assert!(registered[0].details.get("confirmation_link_expires_at").is_some());
        assert!(!serde_json::to_string(&entries).unwrap().contains(ACCOUNT_TOKEN_PREFIX), "no token in the audit log");
    }

    async fn a_refused_registration_leaves_no_mail(db) {
        let (identity, _) = service(&db);
        register(&identity, "petr@example.cz").await;
        let again = Registration { email: "PETR@example.cz".into(), display_name: "Petr".into(), password: secret(GOOD_PASSWORD) };
        assert!(matches!(identity.register_customer(&anonymous(), again).await, Err(IdentityError::EmailTaken)));
        assert_eq!(outbox_size(&db).await, 1, "mail exists only for the change that committed");
    }

    async fn expired_links_are_refused(db) {
        let (identity, clock) = service(&db);
        register(&identity, "jana@example.cz").await;
        let (_, confirm) = one_link(&identity, "jana@example.cz", "confirm-email").await;
        identity.request_password_reset(&anonymous(), "jana@example.cz").await.unwrap();
        let (_, reset) = one_link(&identity, "jana@example.cz", "set-password").await;
        clock.advance_micros(PASSWORD_RESET_TTL_MINUTES * MINUTE_US);
        assert_eq!(refused(identity.set_password_with_token(&anonymous(), &reset, &secret(NEW_PASSWORD)).await), LinkRefused::Expired);
        clock.advance_micros(7 * 24 * HOUR_US);
        assert_eq!(refused(identity.confirm_email(&anonymous(), &confirm).await), LinkRefused::Expired);
        assert!(login(&identity, "jana@example.cz", GOOD_PASSWORD).await.is_ok(), "the password is unchanged");
        assert_eq!(identity.search_customers(&Default::default(), &PageRequest::default().spec().unwrap()).await.unwrap().items[0].email_confirmed_at, None);
    }

    async fn unknown_malformed_and_misused_links_are_unknown(db) {
        let (identity, _) = service(&db);
        register(&identity, "jana@example.cz").await;
        let (_, confirm) = one_link(&identity, "jana@example.cz", "confirm-email").await;
        let never_issued = secret("sta_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        for token in [never_issued, secret(""), secret("sta_short"), secret("sts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] {
            assert_eq!(refused(identity.confirm_email(&anonymous(), &token).await), LinkRefused::Unknown);
            assert_eq!(refused(identity.set_password_with_token(&anonymous(), &token, &secret(NEW_PASSWORD)).await), LinkRefused::Unknown);
        }
        assert_eq!(
            refused(identity.set_password_with_token(&anonymous(), &confirm, &secret(NEW_PASSWORD)).await),
            LinkRefused::Unknown,
            "a confirmation link cannot set a password"
        );
        assert!(identity.confirm_email(&anonymous(), &confirm).await.is_ok(), "and is still good for its purpose");
    }

    async fn a_reset_for_an_unknown_email_sends_nothing_and_answers_the_same(db) {
        let (identity, _) = service(&db);
        register(&identity, "jana@example.cz").await;
        deliver(&identity).await;
        let unknown = identity.request_password_reset(&anonymous(), "nobody@example.cz").await;
        let known = identity.request_password_reset(&anonymous(), "JANA@example.cz").await;
        assert!(matches!((&unknown, &known), (Ok(()), Ok(()))), "{unknown:?} {known:?}");
        let mails = deliver(&identity).await;
        assert_eq!(mails.len(), 1, "only the account's holder gets a mail");
        assert_eq!(mails[0].to(), "jana@example.cz");
        assert_eq!(mails[0].subject(), "Reset your SmartTicket password");
        let entries = audit_of(&db, "auth.password_reset_request").await;
        assert_eq!(entries.len(), 2, "both requests are audited");
        let denied = entries.iter().find(|e| e.outcome == Outcome::Denied).unwrap();
        assert_eq!(denied.details["why"], "no_account");
        assert_eq!(denied.target_id, None);
        assert!(matches!(identity.request_password_reset(&anonymous(), "not an email").await, Err(IdentityError::Invalid { field: "email", .. })));
    }

    async fn reset_mails_are_limited_per_account_and_hour(db) {
        let (identity, clock) = service(&db);
        register(&identity, "jana@example.cz").await;
        deliver(&identity).await;
        for _ in 0..PASSWORD_RESET_MAILS_PER_HOUR_MAX + 2 {
            identity.request_password_reset(&anonymous(), "jana@example.cz").await.unwrap();
            clock.advance_micros(MINUTE_US);
        }
        assert_eq!(deliver(&identity).await.len(), PASSWORD_RESET_MAILS_PER_HOUR_MAX as usize);
        let limited = audit_of(&db, "auth.password_reset_request").await;
        assert_eq!(limited.iter().filter(|e| e.details["why"] == "rate_limited").count(), 2);
        clock.advance_micros(HOUR_US);
        identity.request_password_reset(&anonymous(), "jana@example.cz").await.unwrap();
        assert_eq!(deliver(&identity).await.len(), 1, "the limit is per hour");
    }

    async fn a_counter_customer_logs_in_only_after_choosing_a_password(db) {
        let (identity, clock) = service(&db);
        let customer = identity.create_customer_at_counter(&cashier(), " Eva@Example.cz ", "Eva Dvořáková").await.unwrap();
        assert_eq!(customer.email, "Eva@Example.cz");
        assert_eq!(customer.email_confirmed_at, None);
        assert!(matches!(login(&identity, "eva@example.cz", "").await, Err(IdentityError::InvalidCredentials)));
        assert!(matches!(login(&identity, "eva@example.cz", GOOD_PASSWORD).await, Err(IdentityError::InvalidCredentials)));
        let (mail, token) = one_link(&identity, "Eva@Example.cz", "set-password").await;
        assert!(mail.body().contains("You log in with this email address: Eva@Example.cz"), "{}", mail.body());
        assert!(mail.body().contains("until 2026-11-28 08:00 UTC"), "valid seven days: {}", mail.body());
        assert_eq!(COUNTER_SET_PASSWORD_TTL_HOURS, 7 * 24);

        let weak = identity.set_password_with_token(&anonymous(), &token, &secret("eva12345678")).await;
        assert!(matches!(weak, Err(AccountError::Identity(IdentityError::WeakPassword(_)))), "{weak:?}");
        clock.advance_micros(6 * 24 * HOUR_US);
        identity.set_password_with_token(&anonymous(), &token, &secret(NEW_PASSWORD)).await.unwrap();
        let after = identity.customer(customer.id).await.unwrap();
        assert_eq!(after.email_confirmed_at, Some(clock.now()), "the link was read in that mailbox");
        assert!(login(&identity, "eva@example.cz", NEW_PASSWORD).await.is_ok());
        assert_eq!(
            refused(identity.set_password_with_token(&anonymous(), &token, &secret("Jiné heslo pro Evu 2027")).await),
            LinkRefused::Used
        );
        let created = audit_of(&db, "customer.create_at_counter").await;
        assert_eq!((created.len(), created[0].actor_role.as_deref()), (1, Some("cashier")));
        let set = audit_of(&db, "auth.password_set").await;
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].details["email_confirmed_now"], true);
        let duplicate = identity.create_customer_at_counter(&cashier(), "eva@example.cz", "Eva").await;
        assert!(matches!(duplicate, Err(IdentityError::EmailTaken)));
        assert!(deliver(&identity).await.is_empty(), "no mail for the refused account");
    }

    async fn a_reset_retires_older_links_and_ends_every_session(db) {
        let (identity, _) = service(&db);
        register(&identity, "jana@example.cz").await;
        deliver(&identity).await;
        let session = login(&identity, "jana@example.cz", GOOD_PASSWORD).await.unwrap();
        identity.request_password_reset(&anonymous(), "jana@example.cz").await.unwrap();
        let (_, first) = one_link(&identity, "jana@example.cz", "set-password").await;
        identity.request_password_reset(&anonymous(), "jana@example.cz").await.unwrap();
        let (_, second) = one_link(&identity, "jana@example.cz", "set-password").await;
        identity.set_password_with_token(&anonymous(), &second, &secret(NEW_PASSWORD)).await.unwrap();
        assert_eq!(refused(identity.set_password_with_token(&anonymous(), &first, &secret(GOOD_PASSWORD)).await), LinkRefused::Used);
        assert!(matches!(identity.authenticate(&session).await, Err(IdentityError::TokenInvalid)), "sessions end");
        assert!(login(&identity, "jana@example.cz", GOOD_PASSWORD).await.is_err());
        assert!(login(&identity, "jana@example.cz", NEW_PASSWORD).await.is_ok());
        let set = audit_of(&db, "auth.password_set").await;
        assert_eq!(set[0].details["sessions_ended"], 1);
    }

    async fn a_reset_clears_a_lockout(db) {
        let (identity, _) = service(&db);
        register(&identity, "jana@example.cz").await;
        deliver(&identity).await;
        for _ in 0..5 {
            let _ = login(&identity, "jana@example.cz", "wrong password!").await;
        }
        assert!(matches!(login(&identity, "jana@example.cz", GOOD_PASSWORD).await, Err(IdentityError::AccountLocked { .. })));
        identity.request_password_reset(&anonymous(), "jana@example.cz").await.unwrap();
        let (_, token) = one_link(&identity, "jana@example.cz", "set-password").await;
        identity.set_password_with_token(&anonymous(), &token, &secret(NEW_PASSWORD)).await.unwrap();
        assert!(login(&identity, "jana@example.cz", NEW_PASSWORD).await.is_ok());
    }

    async fn disabled_accounts_get_no_reset_mail(db) {
        let (identity, _) = service(&db);
        let customer = register(&identity, "jana@example.cz").await;
        deliver(&identity).await;
        identity.request_password_reset(&anonymous(), "jana@example.cz").await.unwrap();
        let (_, token) = one_link(&identity, "jana@example.cz", "set-password").await;
        let mut tx = db.begin().await.unwrap();
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE customers SET disabled = TRUE WHERE id = $1")
                .bind(customer.id.to_db())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })
        .unwrap();
        tx.commit().await.unwrap();
        identity.request_password_reset(&anonymous(), "jana@example.cz").await.unwrap();
        assert!(deliver(&identity).await.is_empty());
        let set = identity.set_password_with_token(&anonymous(), &token, &secret(NEW_PASSWORD)).await;
        assert!(matches!(set, Err(AccountError::Identity(IdentityError::AccountDisabled))), "{set:?}");
    }

    async fn links_start_with_the_public_url(db) {
        let clock = Arc::new(ManualClock::new(start()));
        for bad in ["", "eshop.example.cz", "https://eshop.example.cz/?a=b"] {
            let policy = IdentityPolicy { public_url: bad.into(), ..IdentityPolicy::default() };
            assert!(Identity::new(db.clone(), clock.clone(), policy).is_err(), "{bad:?}");
        }
        let identity = Identity::new(db.clone(), clock.clone(), IdentityPolicy::default()).unwrap();
        register(&identity, "jana@example.cz").await;
        let mails = deliver(&identity).await;
        assert!(mails[0].body().contains("\nhttp://127.0.0.1:8080/confirm-email?token=sta_"), "{}", mails[0].body());
    }
}
