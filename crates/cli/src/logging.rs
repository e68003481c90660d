//! Structured logs to standard error, as text for people or JSON for collectors.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG` wins over the configured level; `-v` raises
/// it to debug, `-vv` to trace.
pub fn init(config: &LogConfig, verbose: u8) -> anyhow::Result<()> {
    let level = match verbose {
        0 => config.level.clone(),
        1 => "debug".into(),
        _ => "trace".into(),
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(from_env)?,
        _ => EnvFilter::try_new(format!("{level},sqlx=warn,hyper=warn,tower=warn"))
            .map_err(|e| anyhow::anyhow!("log.level `{level}` is not a valid filter: {e}"))?,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let result = match config.format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
