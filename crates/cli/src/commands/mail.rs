//! `smartticket mail list`: the outbox as an operator sees it, to answer "did the customer's
//! mail go out?". It shows recipients, subjects, states and errors, never bodies: those
//! carry single-use links.

use anyhow::Context;
use smartticket_core::paging::{PAGE_LIMIT_MAX, PageRequest};
use smartticket_mail::{MailEntry, MailFilter, MailStatus};

use super::UsageError;
use crate::config::Config;

/// Longest subject shown in the table; `--json` has them whole.
const SUBJECT_SHOWN_CHARS_MAX: usize = 48;

/// `mail …`
#[derive(Debug, clap::Subcommand)]
pub enum MailCommand {
    /// List the outbox, newest first (never the bodies)
    List(MailListArgs),
}

/// `mail list`
#[derive(Debug, clap::Args)]
pub struct MailListArgs {
    /// Only mails in this state: pending, sent or failed
    #[arg(long, value_parser = parse_status)]
    pub status: Option<MailStatus>,
    /// Only mails to this address (case-insensitive)
    #[arg(long, value_name = "ADDRESS")]
    pub to: Option<String>,
    /// Show at most this many mails (1 to 500)
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Continue after a previous page (the `next_cursor` of `--json`)
    #[arg(long)]
    pub cursor: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

fn parse_status(text: &str) -> Result<MailStatus, String> {
    text.parse()
}

/// Runs a `mail` command.
pub async fn run(config: &Config, command: &MailCommand) -> anyhow::Result<()> {
    match command {
        MailCommand::List(args) => list(config, args).await,
    }
}

async fn list(config: &Config, args: &MailListArgs) -> anyhow::Result<()> {
    let page = PageRequest { limit: Some(args.limit), cursor: args.cursor.clone() }
        .spec::<String>()
        .map_err(|e| UsageError(format!("{e} (--limit is 1 to {PAGE_LIMIT_MAX})")))?;
    let filter = MailFilter { status: args.status, to: args.to.clone() };
    let db = super::open_migrated(config).await?;
    let listed = smartticket_mail::list(&db, &filter, &page).await;
    db.close().await;
    let page = listed.context("cannot read the outbox")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    if page.items.is_empty() {
        println!("no mail");
        return Ok(());
    }
    println!("{:<37} {:<7} {:>3}  {:<19}  {:<32} subject", "id", "status", "try", "queued (UTC)", "to");
    for mail in &page.items {
        println!("{}", row(mail));
        if let Some(error) = mail.last_error.as_deref().filter(|_| mail.status != MailStatus::Sent) {
            println!("{:<37} last error: {error}", "");
        }
    }
    if page.next_cursor.is_some() {
        println!("more: run again with --json to get the cursor of the next page");
    }
    Ok(())
}

fn row(mail: &MailEntry) -> String {
    let queued = mail.created_at.datetime().format("%Y-%m-%d %H:%M:%S");
    let mut subject: String = mail.subject.chars().take(SUBJECT_SHOWN_CHARS_MAX).collect();
    if mail.subject.chars().count() > SUBJECT_SHOWN_CHARS_MAX {
        subject.push('…');
    }
    // Ids and statuses print through `Display` impls that ignore width; pad their text.
    let (id, status) = (mail.id.to_string(), mail.status.as_str());
    format!("{id:<37} {status:<7} {:>3}  {queued}  {:<32} {subject}", mail.attempts, mail.to)
}
