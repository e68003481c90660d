//! `smartticket demo`: a fresh data directory that shows the whole system working, with
//! the logins printed and saved. Each capability adds its part here, so one command
//! always demonstrates everything built so far.
//!
//! Safety: on SQLite the demo only ever deletes a directory it created itself (marked by
//! a `.smartticket-demo` file); on PostgreSQL it refuses a database that already has
//! users.

use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use smartticket_identity::customers::Registration;
use smartticket_identity::partners::{NewApiKey, NewPartner};
use smartticket_identity::staff::NewStaff;
use smartticket_identity::{AuditCtx, Identity, StaffRole};
use smartticket_store::{Backend, Db};

use super::UsageError;
use super::admin::generate_password;
use super::demo_cards as cards;
use crate::args::DemoArgs;
use crate::config::Config;

/// The file marking a directory as the demo's own, safe to replace.
const DEMO_MARKER: &str = ".smartticket-demo";
/// Where the demo saves the logins it made.
pub const CREDENTIALS_FILE: &str = "demo-credentials.json";
/// The domain of demo email addresses (`.test` is reserved for testing, RFC 2606).
const DEMO_DOMAIN: &str = "demo.smartticket.test";

/// One login the demo made.
#[derive(Debug, Serialize)]
struct Login {
    role: String,
    name: String,
    email: String,
    password: String,
}

/// Everything the demo made that a person needs to try it.
#[derive(Debug, Serialize)]
struct Credentials {
    api: String,
    staff: Vec<Login>,
    customers: Vec<Login>,
    partner: PartnerLogin,
}

#[derive(Debug, Serialize)]
struct PartnerLogin {
    name: String,
    id: String,
    api_key: String,
}

/// Builds the demo, then serves it if asked.
pub async fn run(config: Config, args: &DemoArgs) -> anyhow::Result<()> {
    let options = config.store_options()?;
    if options.backend() == Backend::Sqlite {
        prepare_directory(&config.data_dir)?;
    }
    let db = super::open_migrated(&config).await?;
    let (identity, _) = super::identity(&config, &db)?;
    if options.backend() == Backend::Postgres && identity.count_active_admins().await? > 0 {
        return Err(
            UsageError("the PostgreSQL database already has users: the demo fills only an empty one".into()).into()
        );
    }
    let config = cards::prepare_keys(config)?;
    let admin: std::sync::Arc<dyn smartticket_crypto::hsm::KeyAdmin> =
        std::sync::Arc::from(super::keys::open(&config)?);
    let hsm: std::sync::Arc<dyn smartticket_crypto::hsm::Hsm> = admin;
    let services = super::services_with_hsm(&config, &db, hsm.clone())?;
    let (credentials, cast) = populate(&services.identity, &config).await?;
    save_credentials(&config.data_dir, &credentials)?;
    print_summary(&config, &db, &credentials);
    let acquirer = services.test_acquirer.clone().context("the demo pays through the test acquirer")?;
    let ivan_card =
        super::demo_sales::run(&config, &services.sales, &services.identity, &acquirer, &hsm, &cast).await?;
    super::demo_validators::run(&config, &services, hsm.as_ref(), ivan_card).await?;
    send_mail(&config, &db).await?;
    if args.serve {
        super::serve::serve_db(&config, db).await
    } else {
        db.close().await;
        Ok(())
    }
}

fn prepare_directory(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let is_demo = dir.join(DEMO_MARKER).is_file();
        let is_empty = std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()).unwrap_or(false);
        if !is_demo && !is_empty {
            return Err(UsageError(format!(
                "{} exists and is not a demo directory; choose another with --data-dir or remove it",
                dir.display()
            ))
            .into());
        }
        if is_demo {
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove the old demo in {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    set_private(dir, 0o700)?;
    std::fs::write(dir.join(DEMO_MARKER), "This directory was made by `smartticket demo` and is replaced by it.\n")?;
    Ok(())
}

fn set_private(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict permissions of {}", path.display()))
}

async fn populate(identity: &Identity, config: &Config) -> anyhow::Result<(Credentials, super::demo_sales::Cast)> {
    let ctx = AuditCtx::system("demo");
    let people = [
        (StaffRole::Admin, "admin", "Alena Adminová"),
        (StaffRole::Operator, "operator", "Oldřich Provozní"),
        (StaffRole::Cashier, "cashier", "Kateřina Pokladní"),
        (StaffRole::Carrier, "carrier", "Karel Dopravce"),
        (StaffRole::Auditor, "auditor", "Augustin Revizor"),
    ];
    let mut staff = Vec::new();
    let mut cashier = None;
    for (role, local, name) in people {
        let password = generate_password()?;
        let email = format!("{local}@{DEMO_DOMAIN}");
        let new = NewStaff { email: email.clone(), display_name: name.into(), role, password: password.clone() };
        let user = identity.create_staff(&ctx, new).await.with_context(|| format!("cannot create the demo {role}"))?;
        if role == StaffRole::Cashier {
            cashier = Some(user.id);
        }
        staff.push(login(role.as_str(), name, &email, &password));
    }
    let mut customers = Vec::new();
    let mut customer_ids = Vec::new();
    for (local, name) in [("petra.novakova", "Petra Nováková"), ("ivan.petrov", "Иван Петров")] {
        let password = generate_password()?;
        let email = format!("{local}@{DEMO_DOMAIN}");
        let registration = Registration { email: email.clone(), display_name: name.into(), password: password.clone() };
        let customer =
            identity.register_customer(&ctx, registration).await.with_context(|| format!("cannot register {email}"))?;
        customer_ids.push(customer.id);
        customers.push(login("customer", name, &email, &password));
    }
    let partner_name = "Demo Bank";
    let partner = identity
        .create_partner(&ctx, NewPartner { name: partner_name.into(), contact_email: format!("api@{DEMO_DOMAIN}") })
        .await?;
    let key = identity.create_api_key(&ctx, partner.id, NewApiKey { label: "demo".into() }).await?;
    let (Some(cashier), [petra, ivan]) = (cashier, customer_ids.as_slice()) else {
        anyhow::bail!("the demo's cast is incomplete");
    };
    let cast = super::demo_sales::Cast { petra: *petra, ivan: *ivan, cashier, partner: partner.id };
    let credentials = Credentials {
        api: format!("http://{}", config.server.listen),
        staff,
        customers,
        partner: PartnerLogin {
            name: partner_name.into(),
            id: partner.id.to_string(),
            api_key: key.key.expose_secret().to_owned(),
        },
    };
    Ok((credentials, cast))
}

/// Delivers the demo's mail (confirmations, receipts) to the configured transport once,
/// so `smartticket mail list` and the spool show them without a running server.
async fn send_mail(config: &Config, db: &Db) -> anyhow::Result<()> {
    let transport = config.mail_transport()?;
    let where_to = transport.describe();
    let clock: std::sync::Arc<dyn smartticket_core::Clock> = std::sync::Arc::new(smartticket_core::SystemClock);
    let mailer = smartticket_mail::Mailer::new(db.clone(), clock.clone(), transport);
    let report = mailer.deliver_due(clock.now()).await?;
    println!("\nMail: {} sent to {where_to} (`smartticket mail list` shows the outbox)", report.sent);
    Ok(())
}

fn login(role: &str, name: &str, email: &str, password: &SecretString) -> Login {
    Login { role: role.into(), name: name.into(), email: email.into(), password: password.expose_secret().to_owned() }
}

fn save_credentials(dir: &Path, credentials: &Credentials) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(CREDENTIALS_FILE);
    std::fs::write(&path, serde_json::to_vec_pretty(credentials)?)?;
    set_private(&path, 0o600)
}

fn print_summary(config: &Config, db: &Db, credentials: &Credentials) {
    let location = match db.sqlite_path() {
        Some(path) => format!("SQLite at {}", path.display()),
        None => "PostgreSQL".into(),
    };
    println!("SmartTicket demo ready ({location})\n");
    println!("Staff (log in with realm \"staff\"):");
    println!("  {:<9} {:<38} password", "role", "email");
    for login in &credentials.staff {
        println!("  {:<9} {:<38} {}", login.role, login.email, login.password);
    }
    println!("\nCustomers (realm \"customer\"):");
    for login in &credentials.customers {
        println!("  {:<38} {}   ({})", login.email, login.password, login.name);
    }
    println!(
        "\nPartner \"{}\" ({}), API key:\n  {}",
        credentials.partner.name, credentials.partner.id, credentials.partner.api_key
    );
    println!("\nSaved to {} (readable only by you).", config.data_dir.join(CREDENTIALS_FILE).display());
    let admin = credentials.staff.first();
    println!("\nTry it: run `smartticket serve` (or `demo --serve`), then");
    println!("  curl -s {}/readyz", credentials.api);
    if let Some(admin) = admin {
        println!(
            "  curl -s -X POST {}/api/v1/auth/login -H 'content-type: application/json' \\\n       -d '{{\"realm\":\"staff\",\"email\":\"{}\",\"password\":\"{}\"}}'",
            credentials.api, admin.email, admin.password
        );
    }
    println!("  curl -s {}/api/v1/auth/me -H 'authorization: Bearer {}'", credentials.api, credentials.partner.api_key);
    println!("  curl -s {}/api/v1/catalog    (the tariff in force, public)", credentials.api);
    println!("  the whole API: {}/api/openapi.json", credentials.api);
}
