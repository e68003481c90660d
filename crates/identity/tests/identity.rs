//! The identity service on SQLite and PostgreSQL: accounts, logins, tokens and the audit
//! trail they leave.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use secrecy::SecretString;
use smartticket_core::paging::PageRequest;
use smartticket_core::{ManualClock, Timestamp};
use smartticket_identity::audit::{self, AuditFilter, Outcome};
use smartticket_identity::customers::{CustomerSearch, Registration};
use smartticket_identity::partners::{NewApiKey, NewPartner};
use smartticket_identity::sessions::{LoginRequest, PasswordChange, Realm};
use smartticket_identity::staff::{NewStaff, StaffChanges};
use smartticket_identity::{AuditCtx, Identity, IdentityError, IdentityPolicy, Principal, StaffRole};
use smartticket_store::Db;

const GOOD_PASSWORD: &str = "Tramvaj jede na Hlavní nádraží";

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

fn start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-21T08:00:00Z").unwrap()
}

fn service(db: &Db) -> (Identity, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let identity = Identity::new(db.clone(), clock.clone(), IdentityPolicy::default()).unwrap();
    (identity, clock)
}

fn cli() -> AuditCtx {
    AuditCtx::system("test")
}

async fn make_staff(identity: &Identity, email: &str, role: StaffRole) -> smartticket_identity::staff::StaffUser {
    let new =
        NewStaff { email: email.into(), display_name: "Jana Nováková".into(), role, password: secret(GOOD_PASSWORD) };
    identity.create_staff(&cli(), new).await.unwrap()
}

async fn login(identity: &Identity, realm: Realm, email: &str, password: &str) -> Result<SecretString, IdentityError> {
    let request = LoginRequest { realm, email: email.into(), password: secret(password) };
    identity.login(&AuditCtx::new(smartticket_identity::Actor::Anonymous), request).await.map(|g| g.token)
}

smartticket_store::backend_tests! {
    async fn staff_emails_are_unique_ignoring_case(db) {
        let (identity, _) = service(&db);
        make_staff(&identity, "jana@example.cz", StaffRole::Cashier).await;
        let again = NewStaff {
            email: "JANA@Example.cz".into(),
            display_name: "Other".into(),
            role: StaffRole::Admin,
            password: secret(GOOD_PASSWORD),
        };
        assert!(matches!(identity.create_staff(&cli(), again).await, Err(IdentityError::EmailTaken)));
        let page = identity.list_staff(&PageRequest::default().spec().unwrap()).await.unwrap();
        assert_eq!(page.items.len(), 1, "the refused account must not exist");
    }

    async fn bad_input_changes_nothing(db) {
        let (identity, _) = service(&db);
        let weak = NewStaff { email: "a@example.cz".into(), display_name: "A".into(), role: StaffRole::Admin, password: secret("password1") };
        assert!(matches!(identity.create_staff(&cli(), weak).await, Err(IdentityError::WeakPassword(_))));
        let bad_email = NewStaff { email: "not-an-email".into(), display_name: "A".into(), role: StaffRole::Admin, password: secret(GOOD_PASSWORD) };
        assert!(matches!(identity.create_staff(&cli(), bad_email).await, Err(IdentityError::Invalid { field: "email", .. })));
        let empty_name = NewStaff { email: "a@example.cz".into(), display_name: " ".into(), role: StaffRole::Admin, password: secret(GOOD_PASSWORD) };
        assert!(matches!(identity.create_staff(&cli(), empty_name).await, Err(IdentityError::Invalid { field: "display_name", .. })));
        assert!(identity.list_staff(&PageRequest::default().spec().unwrap()).await.unwrap().items.is_empty());
        let log = audit::list(&db, &AuditFilter::default(), &PageRequest::default().spec().unwrap()).await.unwrap();
        assert!(log.items.is_empty(), "refused requests leave no audit entry: {:?}", log.items);
    }

    async fn login_yields_a_token_that_authenticates(db) {
        let (identity, _) = service(&db);
        let user = make_staff(&identity, "op@example.cz", StaffRole::Operator).await;
        let token = login(&identity, Realm::Staff, "OP@example.cz", GOOD_PASSWORD).await.unwrap();
        match identity.authenticate(&token).await.unwrap() {
            Principal::Staff { id, role, .. } => {
                assert_eq!(id, user.id);
                assert_eq!(role, StaffRole::Operator);
            }
            other => panic!("expected staff, got {other:?}"),
        }
        assert!(matches!(login(&identity, Realm::Customer, "op@example.cz", GOOD_PASSWORD).await, Err(IdentityError::InvalidCredentials)), "realms are separate");
        assert!(matches!(identity.authenticate(&secret("sts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).await, Err(IdentityError::TokenInvalid)));
    }

    async fn repeated_failures_lock_the_account_even_for_the_right_password(db) {
        let (identity, clock) = service(&db);
        make_staff(&identity, "c@example.cz", StaffRole::Cashier).await;
        for _ in 0..4 {
            assert!(matches!(login(&identity, Realm::Staff, "c@example.cz", "wrong password!").await, Err(IdentityError::InvalidCredentials)));
        }
        assert!(login(&identity, Realm::Staff, "c@example.cz", GOOD_PASSWORD).await.is_ok(), "success resets the count");
        for _ in 0..5 {
            let _ = login(&identity, Realm::Staff, "c@example.cz", "wrong password!").await;
        }
        assert!(matches!(login(&identity, Realm::Staff, "c@example.cz", GOOD_PASSWORD).await, Err(IdentityError::AccountLocked { .. })));
        clock.advance_micros(16 * 60 * 1_000_000);
        assert!(login(&identity, Realm::Staff, "c@example.cz", GOOD_PASSWORD).await.is_ok(), "the lock ends");
        let denied = audit::list(&db, &AuditFilter { action: Some("auth.login".into()), ..Default::default() }, &PageRequest { limit: Some(500), cursor: None }.spec().unwrap()).await.unwrap();
        assert_eq!(denied.items.iter().filter(|e| e.outcome == Outcome::Denied).count(), 10);
    }

    async fn sessions_expire_and_logout_revokes(db) {
        let (identity, clock) = service(&db);
        make_staff(&identity, "a@example.cz", StaffRole::Auditor).await;
        let token = login(&identity, Realm::Staff, "a@example.cz", GOOD_PASSWORD).await.unwrap();
        clock.advance_micros(8 * 3600 * 1_000_000);
        assert!(matches!(identity.authenticate(&token).await, Err(IdentityError::TokenExpired)));
        let token = login(&identity, Realm::Staff, "a@example.cz", GOOD_PASSWORD).await.unwrap();
        let principal = identity.authenticate(&token).await.unwrap();
        identity.logout(&cli(), &principal).await.unwrap();
        assert!(matches!(identity.authenticate(&token).await, Err(IdentityError::TokenInvalid)));
    }

    async fn password_change_checks_the_current_one_and_ends_other_sessions(db) {
        let (identity, _) = service(&db);
        make_staff(&identity, "p@example.cz", StaffRole::Cashier).await;
        let first = login(&identity, Realm::Staff, "p@example.cz", GOOD_PASSWORD).await.unwrap();
        let second = login(&identity, Realm::Staff, "p@example.cz", GOOD_PASSWORD).await.unwrap();
        let principal = identity.authenticate(&second).await.unwrap();
        let wrong = PasswordChange { current_password: secret("not it at all"), new_password: secret("Nový vlak do Olomouce 2026") };
        assert!(matches!(identity.change_password(&cli(), &principal, wrong).await, Err(IdentityError::WrongCurrentPassword)));
        let weak = PasswordChange { current_password: secret(GOOD_PASSWORD), new_password: secret("12345678901") };
        assert!(matches!(identity.change_password(&cli(), &principal, weak).await, Err(IdentityError::WeakPassword(_))));
        let good = PasswordChange { current_password: secret(GOOD_PASSWORD), new_password: secret("Nový vlak do Olomouce 2026") };
        identity.change_password(&cli(), &principal, good).await.unwrap();
        assert!(matches!(identity.authenticate(&first).await, Err(IdentityError::TokenInvalid)), "other sessions end");
        assert!(identity.authenticate(&second).await.is_ok(), "the session that changed it stays");
        assert!(login(&identity, Realm::Staff, "p@example.cz", GOOD_PASSWORD).await.is_err());
        assert!(login(&identity, Realm::Staff, "p@example.cz", "Nový vlak do Olomouce 2026").await.is_ok());
    }

    async fn disabling_a_user_ends_access_and_the_last_admin_is_kept(db) {
        let (identity, _) = service(&db);
        let admin = make_staff(&identity, "admin@example.cz", StaffRole::Admin).await;
        let cashier = make_staff(&identity, "cash@example.cz", StaffRole::Cashier).await;
        let token = login(&identity, Realm::Staff, "cash@example.cz", GOOD_PASSWORD).await.unwrap();
        let disable = StaffChanges { disabled: Some(true), ..Default::default() };
        identity.update_staff(&cli(), cashier.id, disable).await.unwrap();
        assert!(identity.authenticate(&token).await.is_err());
        assert!(matches!(login(&identity, Realm::Staff, "cash@example.cz", GOOD_PASSWORD).await, Err(IdentityError::AccountDisabled)));
        let demote = StaffChanges { role: Some(StaffRole::Operator), ..Default::default() };
        assert!(matches!(identity.update_staff(&cli(), admin.id, demote).await, Err(IdentityError::LastAdmin)));
        let promote = StaffChanges { role: Some(StaffRole::Admin), disabled: Some(false), ..Default::default() };
        identity.update_staff(&cli(), cashier.id, promote).await.unwrap();
        let demote = StaffChanges { role: Some(StaffRole::Operator), ..Default::default() };
        assert_eq!(identity.update_staff(&cli(), admin.id, demote).await.unwrap().role, StaffRole::Operator);
    }

    async fn api_keys_authenticate_until_revoked_and_are_never_listed(db) {
        let (identity, _) = service(&db);
        let partner = identity.create_partner(&cli(), NewPartner { name: "Banka a.s.".into(), contact_email: "it@banka.cz".into() }).await.unwrap();
        let issued = identity.create_api_key(&cli(), partner.id, NewApiKey { label: "production".into() }).await.unwrap();
        let key_text = secrecy::ExposeSecret::expose_secret(&issued.key).to_owned();
        assert!(key_text.starts_with("stk_"));
        match identity.authenticate(&issued.key).await.unwrap() {
            Principal::Partner { id, key } => {
                assert_eq!(id, partner.id);
                assert_eq!(key, issued.info.id);
            }
            other => panic!("expected partner, got {other:?}"),
        }
        let listed = identity.list_api_keys(partner.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(key_text.starts_with(&listed[0].prefix));
        assert!(!serde_json::to_string(&listed).unwrap().contains(&key_text), "listing never shows the key");
        assert!(listed[0].last_used_at.is_some(), "use is recorded");
        identity.revoke_api_key(&cli(), partner.id, issued.info.id).await.unwrap();
        assert!(matches!(identity.authenticate(&issued.key).await, Err(IdentityError::TokenInvalid)));
        let twice = identity.revoke_api_key(&cli(), partner.id, issued.info.id).await.unwrap();
        assert!(twice.revoked_at.is_some());
        let duplicate = identity.create_partner(&cli(), NewPartner { name: "Banka a.s.".into(), contact_email: "x@y.cz".into() }).await;
        assert!(matches!(duplicate, Err(IdentityError::NameTaken)));
    }

    async fn customers_register_and_are_found_by_email_prefix(db) {
        let (identity, _) = service(&db);
        let ctx = AuditCtx::new(smartticket_identity::Actor::Anonymous);
        for (email, name) in [("petr_novak@example.cz", "Petr"), ("petra@example.cz", "Petra"), ("pavel@example.cz", "Pavel")] {
            let registration = Registration { email: email.into(), display_name: name.into(), password: secret(GOOD_PASSWORD) };
            identity.register_customer(&ctx, registration).await.unwrap();
        }
        let again = Registration { email: "PETRA@example.cz".into(), display_name: "X".into(), password: secret(GOOD_PASSWORD) };
        assert!(matches!(identity.register_customer(&ctx, again).await, Err(IdentityError::EmailTaken)));
        let spec = PageRequest::default().spec().unwrap();
        let found = identity.search_customers(&CustomerSearch { email: Some("Petr".into()) }, &spec).await.unwrap();
        assert_eq!(found.items.len(), 2);
        let underscore = identity.search_customers(&CustomerSearch { email: Some("petr_".into()) }, &spec).await.unwrap();
        assert_eq!(underscore.items.len(), 1, "`_` matches only itself");
        assert!(login(&identity, Realm::Customer, "pavel@example.cz", GOOD_PASSWORD).await.is_ok());
    }

    async fn audit_entries_page_newest_first_and_filter(db) {
        let (identity, _) = service(&db);
        for n in 0..7 {
            make_staff(&identity, &format!("user{n}@example.cz"), StaffRole::Cashier).await;
        }
        let first = audit::list(&db, &AuditFilter::default(), &PageRequest { limit: Some(3), cursor: None }.spec().unwrap()).await.unwrap();
        assert_eq!(first.items.len(), 3);
        let cursor = first.next_cursor.clone().unwrap();
        let second = audit::list(&db, &AuditFilter::default(), &PageRequest { limit: Some(3), cursor: Some(cursor) }.spec().unwrap()).await.unwrap();
        let third = audit::list(&db, &AuditFilter::default(), &PageRequest { limit: Some(3), cursor: second.next_cursor.clone() }.spec().unwrap()).await.unwrap();
        assert_eq!(third.items.len(), 1);
        assert_eq!(third.next_cursor, None);
        let seqs: Vec<i64> = first.items.iter().chain(&second.items).chain(&third.items).map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats: {seqs:?}");
        let entry = &first.items[0];
        assert_eq!(entry.action, "staff.create");
        assert_eq!(entry.actor_kind, "system");
        assert_eq!(entry.details["email"], "user6@example.cz");
        let filtered = audit::list(&db, &AuditFilter { target: entry.target_id.clone(), ..Default::default() }, &PageRequest::default().spec().unwrap()).await.unwrap();
        assert_eq!(filtered.items.len(), 1);
    }
}
