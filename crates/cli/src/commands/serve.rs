//! `smartticket serve`: migrate, then serve the API until SIGINT or SIGTERM, then let
//! requests in flight finish and close the database cleanly.

use std::time::Duration;

use anyhow::Context;
use smartticket_server::AppState;

use crate::config::Config;

/// Serves until a shutdown signal.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let db = super::open_migrated(config).await?;
    serve_db(config, db).await
}

/// Serves an already open and migrated database.
pub async fn serve_db(config: &Config, db: smartticket_store::Db) -> anyhow::Result<()> {
    let services = super::services(config, &db)?;
    let clock = services.clock.clone();
    let transport = config.mail_transport()?;
    tracing::info!(transport = %transport.describe(), "mail");
    let mailer = smartticket_mail::Mailer::new(db.clone(), clock.clone(), transport)
        .with_poll_interval(Duration::from_millis(config.mail.poll_interval_ms));
    let (stop_mailer, mailer_stopped) = tokio::sync::watch::channel(false);
    let mailer = tokio::spawn(async move {
        let mut stopped = mailer_stopped;
        mailer
            .run(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await;
    });
    // Lists for validators: published every interval while the server runs.
    let fleet = services.fleet.clone();
    let interval = Duration::from_millis(config.acceptance.publish_interval_ms.max(1));
    let (stop_publisher, publisher_stopped) = tokio::sync::watch::channel(false);
    let publisher = tokio::spawn(async move {
        let mut stopped = publisher_stopped;
        fleet
            .run_publisher(interval, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await;
    });
    let state = AppState::new(services);
    let app = smartticket_server::app(state);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %db.backend(), routes = app.routes.len(), "listening");
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let served = smartticket_server::serve(listener, app.router, smartticket_server::shutdown_signal(), grace).await;
    let _ = stop_mailer.send(true);
    let _ = stop_publisher.send(true);
    let _ = mailer.await;
    let _ = publisher.await;
    db.close().await;
    served.context("the server failed")?;
    tracing::info!("stopped; database closed");
    Ok(())
}
