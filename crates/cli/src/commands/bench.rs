//! `smartticket bench sales`: concurrent one-call sales through the real HTTP API, on a
//! scratch database (SQLite in a temporary directory, or a fresh schema of a PostgreSQL
//! database), reporting throughput and latency percentiles, then checking that the
//! database holds exactly the sales that were acknowledged: no sale lost, none invented.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use smartticket_identity::AuditCtx;
use smartticket_identity::partners::{NewApiKey, NewPartner};
use smartticket_sales::MediumEvent;
use smartticket_sales::media::Scope;
use smartticket_store::testing::TestDb;

use crate::config::Config;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Concurrent sales through the HTTP API (order and payment in one call)
    Sales(SalesBench),
}

/// How hard to push.
#[derive(Debug, Args)]
pub struct SalesBench {
    /// Requests in flight at once
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Seconds of measured load (after a one-second warm-up)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// Fare cards the sales are spread over
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub cards: u32,
    /// Run on PostgreSQL at this URL (a fresh schema, dropped afterwards); SQLite otherwise
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs a benchmark.
pub async fn run(config: &Config, command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Sales(bench) => sales(config, bench).await,
    }
}

const IDSOK: &str = include_str!("../../../../examples/networks/idsok.toml");

/// What a worker measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    failed: u64,
    first_error: Option<String>,
}

async fn sales(config: &Config, bench: &SalesBench) -> anyhow::Result<()> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner.set_message("creating a scratch database");
    let test_db = match &bench.postgres {
        Some(url) => TestDb::postgres_at(url, 16).await.context("cannot create a PostgreSQL schema")?,
        None => TestDb::sqlite().await.context("cannot create a SQLite database")?,
    };
    let db = test_db.db.clone();
    let backend = db.backend().to_string();
    let mut scratch = config.clone();
    scratch.payments.test_acquirer_secret = crate::config::Secret::default();
    let services = super::services_with_hsm(
        &scratch,
        &db,
        Arc::new(smartticket_crypto::hsm::soft::SoftHsm::generate(&smartticket_crypto::keys::KeyRole::ALL)?),
    )?;
    let sales = services.sales.clone();
    let identity = services.identity.clone();
    let clock = services.clock.clone();
    let ctx = AuditCtx::system("bench");

    spinner.set_message("publishing the IDSOK network");
    let document = smartticket_catalog::CatalogDocument::from_toml(IDSOK)?;
    let today = smartticket_catalog::Catalog::from_document(document.clone())?
        .local_date(smartticket_core::Clock::now(clock.as_ref()));
    sales.catalog().publish(&ctx, document, today, "bench").await?;
    let partner = identity
        .create_partner(&ctx, NewPartner { name: "Bench kiosk".into(), contact_email: "bench@example.org".into() })
        .await?;
    let key = identity.create_api_key(&ctx, partner.id, NewApiKey { label: "bench".into() }).await?;
    let token = key.key.expose_secret().to_owned();

    let mut cards = Vec::with_capacity(bench.cards as usize);
    let progress = indicatif::ProgressBar::new(u64::from(bench.cards));
    spinner.finish_and_clear();
    progress.set_message("registering cards");
    for n in 0..bench.cards {
        let mut uid = [0x04, 0, 0, 0, 0, 0, 0];
        uid[3..].copy_from_slice(&n.to_be_bytes());
        let number = format!("{}", 700_000 + n);
        let medium = sales.register_stock(&ctx, uid, &number).await?;
        sales.change_status(&ctx, Scope::Staff, medium.id, MediumEvent::Issue, None).await?;
        let medium = sales.register_fare_card(&ctx, Scope::Partner(partner.id), None, &number, None).await?;
        cards.push(medium.id.to_string());
        progress.inc(1);
    }
    progress.finish_and_clear();

    let app = smartticket_server::app(smartticket_server::AppState::new(services));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(smartticket_server::serve(
        listener,
        app.router,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(bench.concurrency as usize)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("http://{addr}/api/v1/sales");
    let cards = Arc::new(cards);
    let counter = Arc::new(AtomicU64::new(0));
    let warm_up = Duration::from_secs(1);
    let started = Instant::now();
    let measure_from = started + warm_up;
    let measure_until = measure_from + Duration::from_secs(bench.seconds);
    let bar = indicatif::ProgressBar::new(bench.seconds);
    bar.set_message(format!("{} workers selling on {backend}", bench.concurrency));
    let mut workers = Vec::new();
    for worker in 0..bench.concurrency {
        let client = client.clone();
        let url = url.clone();
        let token = token.clone();
        let cards = cards.clone();
        let counter = counter.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut n: u64 = 0;
            loop {
                let now = Instant::now();
                if now >= measure_until {
                    return tally;
                }
                n += 1;
                let index = (worker as usize).wrapping_mul(7919).wrapping_add(n as usize) % cards.len().max(1);
                let Some(card) = cards.get(index) else { return tally };
                let body = format!(
                    r#"{{"items":[{{"medium_id":"{card}","product":"purse","discount":"adult","amount_minor":10000}}],"payment":{{"method":"partner"}}}}"#
                );
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("idempotency-key", format!("bench-{worker}-{n}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let elapsed = sent.elapsed();
                let ok = match answer {
                    Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
                        let _ = response.bytes().await;
                        true
                    }
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        tally.first_error.get_or_insert_with(|| format!("{status}: {text}"));
                        false
                    }
                    Err(error) => {
                        tally.first_error.get_or_insert_with(|| error.to_string());
                        false
                    }
                };
                if ok {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                if sent >= measure_from {
                    if ok {
                        tally.latencies_us.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                    } else {
                        tally.failed += 1;
                    }
                }
            }
        }));
    }
    while Instant::now() < measure_until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        bar.set_position(Instant::now().saturating_duration_since(measure_from).as_secs().min(bench.seconds));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    for worker in workers {
        let tally = worker.await?;
        latencies.extend(tally.latencies_us);
        failed += tally.failed;
        first_error = first_error.or(tally.first_error);
    }
    bar.finish_and_clear();
    let acknowledged = counter.load(Ordering::Relaxed);
    let _ = stop.send(());
    server.await??;

    // Exactly the acknowledged sales are in the database, each paid once.
    let counts = sales.paid_counts().await?;
    let (stored, approved) = (counts.paid_orders, counts.approved_payments);
    test_db.finish().await?;

    latencies.sort_unstable();
    let measured = latencies.len() as f64;
    let percentile = |p: f64| -> f64 {
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(index).map(|us| f64::from(*us) / 1000.0).unwrap_or(0.0)
    };
    let throughput = measured / bench.seconds as f64;
    let consistent = u64::try_from(stored).ok() == Some(acknowledged) && stored == approved;
    if bench.json {
        let json = serde_json::json!({
            "backend": backend,
            "concurrency": bench.concurrency,
            "seconds": bench.seconds,
            "sales_measured": latencies.len(),
            "sales_per_second": throughput,
            "p50_ms": percentile(0.50),
            "p90_ms": percentile(0.90),
            "p99_ms": percentile(0.99),
            "max_ms": percentile(1.0),
            "failed": failed,
            "acknowledged_total": acknowledged,
            "stored_paid_orders": stored,
            "consistent": consistent,
        });
        println!("{json}");
    } else {
        println!(
            "sales bench on {backend}: {} workers, {} s measured after 1 s warm-up",
            bench.concurrency, bench.seconds
        );
        println!("  completed sales  {:>10.0} /s  ({} in {} s)", throughput, latencies.len(), bench.seconds);
        println!(
            "  latency          p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
            percentile(0.50),
            percentile(0.90),
            percentile(0.99),
            percentile(1.0)
        );
        println!("  failed           {failed}");
        println!(
            "  durability       {acknowledged} acknowledged, {stored} paid orders and {approved} approved payments stored: {}",
            if consistent { "consistent" } else { "MISMATCH" }
        );
    }
    if let Some(error) = first_error {
        eprintln!("first error: {error}");
    }
    anyhow::ensure!(consistent, "acknowledged sales and stored orders differ");
    Ok(())
}
