//! `smartticket catalog …`: publish a network's tariff from a TOML file as a new catalogue
//! version (`import`), and show the catalogue in force on a date (`show`). Rules and
//! storage live in `smartticket-catalog`; this module reads the file and prints.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use smartticket_catalog::{
    Catalog, CatalogDocument, CatalogError, CatalogStore, DOCUMENT_BYTES_MAX, Period, Product, ProductTerms,
    VersionInfo, ZoneScope,
};
use smartticket_core::{Clock, SystemClock};
use smartticket_identity::AuditCtx;

use super::UsageError;
use crate::config::Config;

/// `catalog …`
#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Publish a network document (TOML) as a new catalogue version
    Import(CatalogImportArgs),
    /// Show the catalogue in force today (or on --date)
    Show(CatalogShowArgs),
}

/// `catalog import`
#[derive(Debug, clap::Args)]
pub struct CatalogImportArgs {
    /// The network document, e.g. examples/networks/idsok.toml
    pub file: PathBuf,
    /// First day the version is in force, YYYY-MM-DD [default: today in the network's timezone]
    #[arg(long, value_name = "DATE")]
    pub effective_from: Option<NaiveDate>,
    /// Why this version exists; kept with it and in the audit log
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub note: String,
    /// Only check the file; publish nothing
    #[arg(long)]
    pub check: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `catalog show`
#[derive(Debug, clap::Args)]
pub struct CatalogShowArgs {
    /// Show the catalogue in force on this date, YYYY-MM-DD [default: today]
    #[arg(long, value_name = "DATE")]
    pub date: Option<NaiveDate>,
    /// Print JSON: the version and its document
    #[arg(long)]
    pub json: bool,
}

/// Runs a `catalog` command.
pub async fn run(config: &Config, command: &CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Import(args) => import(config, args).await,
        CatalogCommand::Show(args) => show(config, args).await,
    }
}

async fn import(config: &Config, args: &CatalogImportArgs) -> anyhow::Result<()> {
    let document = read_document(&args.file)?;
    let checked =
        Catalog::from_document(document.clone()).map_err(|e| UsageError(format!("{}: {e}", args.file.display())))?;
    if args.check {
        if args.json {
            println!("{}", serde_json::json!({ "valid": true, "network": checked.network_name() }));
        } else {
            println!("{} is a valid network document for {}", args.file.display(), checked.network_name());
        }
        return Ok(());
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let effective_from = args.effective_from.unwrap_or_else(|| checked.local_date(clock.now()));
    let db = super::open_migrated(config).await?;
    let store = CatalogStore::new(db.clone(), clock);
    let published = store.publish(&AuditCtx::system("cli"), document, effective_from, &args.note).await;
    db.close().await;
    let info = published.map_err(|e| failure(e, &args.file))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!(
            "published catalogue version {} of {}, in force from {} (document SHA-256 {})",
            info.id,
            checked.network_name(),
            info.effective_from,
            info.document_sha256
        );
    }
    Ok(())
}

/// Reads a TOML document of at most [`DOCUMENT_BYTES_MAX`] bytes.
fn read_document(path: &Path) -> anyhow::Result<CatalogDocument> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    // One byte past the limit is enough to know the file is too large, without reading it all.
    let limit = u64::try_from(DOCUMENT_BYTES_MAX).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > DOCUMENT_BYTES_MAX {
        return Err(UsageError(format!("{}: larger than {DOCUMENT_BYTES_MAX} bytes", path.display())).into());
    }
    let text = String::from_utf8(bytes).map_err(|_| UsageError(format!("{}: not UTF-8 text", path.display())))?;
    CatalogDocument::from_toml(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())).into())
}

/// Refusals of the operator's input are usage errors (exit 2); storage keeps its own
/// error so an unavailable database exits with 3.
fn failure(error: CatalogError, file: &Path) -> anyhow::Error {
    match error {
        CatalogError::Store(store) => anyhow::Error::new(store).context("cannot publish the catalogue"),
        CatalogError::Document(document) => UsageError(format!("{}: {document}", file.display())).into(),
        refused @ (CatalogError::BackDated { .. }
        | CatalogError::DuplicateDate(_)
        | CatalogError::NetworkChanged { .. }
        | CatalogError::Invalid { .. }) => UsageError(refused.to_string()).into(),
        other => anyhow::Error::new(other).context("cannot publish the catalogue"),
    }
}

async fn show(config: &Config, args: &CatalogShowArgs) -> anyhow::Result<()> {
    let db = super::open_migrated(config).await?;
    let store = CatalogStore::new(db.clone(), Arc::new(SystemClock));
    let found = match args.date {
        Some(date) => store.in_force_on(date).await,
        None => match store.today().await {
            Ok(today) => store.in_force_on(today).await,
            Err(error) => Err(error),
        },
    };
    db.close().await;
    let (info, catalog) = match found {
        Ok(found) => found,
        Err(CatalogError::Store(store)) => return Err(anyhow::Error::new(store).context("cannot read the catalogue")),
        Err(CatalogError::NoCatalog(date)) => {
            anyhow::bail!("no catalogue is in force on {date}: publish one with `smartticket catalog import FILE`")
        }
        Err(other) => return Err(anyhow::Error::new(other).context("cannot read the catalogue")),
    };
    if args.json {
        let json = serde_json::json!({ "version": info, "document": catalog.document() });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{}", describe(&info, &catalog));
    }
    Ok(())
}

/// The catalogue as a person reads it: the version, the network, then each product with
/// its price table (one line per discount, prices by zone count).
fn describe(info: &VersionInfo, catalog: &Catalog) -> String {
    let mut out = String::new();
    let network = &catalog.document().network;
    let _ = writeln!(out, "{} ({}, {})", network.name, network.currency, network.timezone);
    let _ = writeln!(
        out,
        "version {} in force from {}, published {} by {}{}",
        info.id,
        info.effective_from,
        info.published_at,
        info.published_by,
        if info.note.is_empty() { String::new() } else { format!(": {}", info.note) }
    );
    let zones: Vec<String> = catalog.zones().iter().map(|(code, name)| format!("{code} {name}")).collect();
    let _ = writeln!(out, "\nzones: {}", zones.join("; "));
    for combi in &catalog.document().combi_zones {
        let members: Vec<String> = combi.zones.iter().map(u8::to_string).collect();
        let _ = writeln!(out, "combi-zone {}: {} = zones {}", combi.code, combi.name, members.join(", "));
    }
    for route in &catalog.document().routes {
        let members: Vec<String> = route.zones.iter().map(u8::to_string).collect();
        let _ = writeln!(out, "route {}: {} via zones {}", route.code, route.name, members.join(" → "));
    }
    let _ = writeln!(out);
    for discount in catalog.discounts() {
        let approval = if discount.approval { " (needs approval with a photo)" } else { "" };
        let _ = writeln!(out, "discount {}: {}{approval}", discount.code, discount.name);
    }
    for def in &catalog.document().products {
        if let Some(product) = catalog.product(&def.code) {
            describe_product(&mut out, product);
        }
    }
    out
}

fn describe_product(out: &mut String, product: &Product) {
    let terms = match &product.terms {
        ProductTerms::SingleFare { minutes } => format!("single fare, {minutes} minutes"),
        ProductTerms::TimeCoupon { period: Period::Days(n) } => format!("time coupon, {n} day(s)"),
        ProductTerms::TimeCoupon { period: Period::Weeks(n) } => format!("time coupon, {n} week(s)"),
        ProductTerms::TimeCoupon { period: Period::Months(n) } => format!("time coupon, {n} month(s)"),
        ProductTerms::Trips { trips, validity_days } => format!("{trips} trips within {validity_days} days"),
        ProductTerms::StoredValue { min, max } => format!("stored value, {min} to {max}"),
        ProductTerms::Event { event, starts, ends, .. } => format!("event {event}, {starts} to {ends}"),
    };
    let scope = match product.zones {
        ZoneScope::Chosen => "priced by zone count",
        ZoneScope::All => "all zones",
    };
    let _ = writeln!(out, "\nproduct {}: {} ({terms}; {scope})", product.code, product.name);
    let mut line_discount: Option<&str> = None;
    for entry in product.prices() {
        if line_discount != Some(entry.discount) {
            if line_discount.is_some() {
                let _ = writeln!(out);
            }
            let _ = write!(out, "  {:<10}", entry.discount);
            line_discount = Some(entry.discount);
        }
        let amount = entry.price.to_string();
        let amount = amount.strip_suffix(entry.price.currency.code()).map(str::trim_end).unwrap_or(&amount);
        match entry.zones {
            Some(zones) => {
                let _ = write!(out, " {zones}z {amount:>8}");
            }
            None => {
                let _ = write!(out, " {amount}");
            }
        }
    }
    if line_discount.is_some() {
        let _ = writeln!(out);
    }
}
