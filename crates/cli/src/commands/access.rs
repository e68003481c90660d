//! `smartticket access …`: a door controller in access-control mode. `serve` runs its REST
//! API; `present`, `list`, `put` and `remove` use the same device directory from the shell,
//! offline (not while `serve` runs: the journal's lock keeps one process per directory).
//! Decisions and rules are `acceptance::access`'s; this module wires files and prints.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use smartticket_acceptance::access::{
    AccessDecision, AccessError, Controller, Doors, Grant, Identifier, LIST_FILE_NAME, LIST_HEADER_BYTES,
    LIST_PAGE_LIMIT_MAX, decode_header,
};
use smartticket_acceptance::journal::JournalError;
use smartticket_controller::ApiToken;
use smartticket_core::{Clock, SystemClock, Timestamp};

use super::UsageError;

/// The token file's name in the device directory, unless `--token-file` says otherwise.
const TOKEN_FILE_NAME: &str = "api-token";
/// Random bytes in a generated token: 256 bits, written as 64 hex digits.
const TOKEN_RANDOM_BYTES: usize = 32;
/// The device number of a new directory when none is given.
const DEVICE_DEFAULT: u32 = 1;

/// `access …`
#[derive(Debug, clap::Subcommand)]
pub enum AccessCommand {
    /// Serve the controller's REST API (creates the directory and an API token on first start)
    Serve(ServeArgs),
    /// Present an identifier at a door, as a reader would; prints GRANTED or DENIED and why
    Present(PresentArgs),
    /// List the identifiers on the device
    List(ListArgs),
    /// Add an identifier, or replace its grant
    Put(PutArgs),
    /// Remove an identifier
    Remove(RemoveArgs),
}

/// The device directory and how to open it.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// The device directory (the list, the journal and the API token)
    #[arg(long)]
    pub dir: PathBuf,
    /// The device number [default: the one in the directory, or 1 for a new one]
    #[arg(long)]
    pub device: Option<u32>,
    /// Refuse a second grant at the same door within this many seconds (0: off); kept in
    /// memory, so it only spans one `serve`
    #[arg(long, default_value_t = 30)]
    pub passback_seconds: u32,
}

/// `access serve`
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Where to listen
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The file holding the API token (its first line) [default: DIR/api-token, created
    /// with a random token if missing]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// An identifier as typed.
#[derive(Debug, clap::Args)]
pub struct IdentifierArgs {
    /// The identifier: `BITS:HEX` (e.g. 26:1A2B3C), or a plain number (decimal, or 0x hex) with --bits
    #[arg(value_name = "ID")]
    pub identifier: String,
    /// The reader's bit length, when ID is a plain number
    #[arg(long)]
    pub bits: Option<u32>,
}

impl IdentifierArgs {
    fn parse(&self) -> anyhow::Result<Identifier> {
        let parsed = match self.bits {
            Some(bits) => Identifier::from_number(bits, &self.identifier),
            None => self.identifier.parse(),
        };
        parsed.map_err(|error| UsageError(format!("{}: {error}", self.identifier)).into())
    }
}

/// `access present`
#[derive(Debug, clap::Args)]
pub struct PresentArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub identifier: IdentifierArgs,
    /// The door, 1-32
    #[arg(long, default_value_t = 1)]
    pub door: u8,
    /// Print the decision as JSON
    #[arg(long)]
    pub json: bool,
}

/// `access list`
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Skip this many identifiers
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Show at most this many (at most 1000)
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON lines
    #[arg(long)]
    pub json: bool,
}

/// `access put`
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub identifier: IdentifierArgs,
    /// Whose pass it is
    #[arg(long)]
    pub label: String,
    /// Valid from (RFC 3339) [default: always]
    #[arg(long)]
    pub from: Option<String>,
    /// Valid until (RFC 3339, exclusive) [default: no end]
    #[arg(long)]
    pub until: Option<String>,
    /// The doors it opens, e.g. 1,3 [default: all]
    #[arg(long, value_delimiter = ',')]
    pub doors: Vec<u32>,
    /// Store it blocked
    #[arg(long)]
    pub blocked: bool,
    /// Who makes the change, for the journal
    #[arg(long, default_value = "cli")]
    pub actor: String,
}

/// `access remove`
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub identifier: IdentifierArgs,
    /// Who makes the change, for the journal
    #[arg(long, default_value = "cli")]
    pub actor: String,
}

/// Runs `access …`.
pub async fn run(command: &AccessCommand) -> anyhow::Result<()> {
    match command {
        AccessCommand::Serve(args) => serve(args).await,
        AccessCommand::Present(args) => present(args),
        AccessCommand::List(args) => list(args),
        AccessCommand::Put(args) => put(args),
        AccessCommand::Remove(args) => remove(args),
    }
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let controller = open(&args.device)?;
    let token_path = args.token_file.clone().unwrap_or_else(|| args.device.dir.join(TOKEN_FILE_NAME));
    let token = read_or_create_token(&token_path, args.token_file.is_none())?;
    let device = controller.device();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr().context("cannot read the listening address")?;
    let router = smartticket_controller::router(controller, token, Arc::new(SystemClock));
    println!(
        "device {device} from {} serving on http://{address}/api/v1 (token in {})",
        args.device.dir.display(),
        token_path.display()
    );
    std::io::stdout().flush().ok();
    smartticket_controller::serve(listener, router, smartticket_server::shutdown_signal())
        .await
        .context("the API server failed")
}

/// Reads the token from the first line of `path`; creates the file with a random token when
/// it is missing and `create` is set. The token itself is never printed or logged.
fn read_or_create_token(path: &Path, create: bool) -> anyhow::Result<ApiToken> {
    if create && !path.exists() {
        let mut bytes = [0_u8; TOKEN_RANDOM_BYTES];
        getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
        write_secret(path, &format!("{}\n", hex::encode(bytes)))?;
        println!("created a new API token in {} (send it as `Authorization: Bearer <token>`)", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the API token {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default().trim();
    ApiToken::new(line).map_err(|error| UsageError(format!("{}: {error}", path.display())).into())
}

/// Creates `path` readable by its owner only; refuses to replace an existing file.
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all().with_context(|| format!("cannot sync {}", path.display()))
}

fn present(args: &PresentArgs) -> anyhow::Result<()> {
    let identifier = args.identifier.parse()?;
    let mut controller = open(&args.device)?;
    let presented = controller.present(identifier, args.door, SystemClock.now()).map_err(input_error)?;
    if args.json {
        // The REST API's shape: the decision's fields beside the presentation's.
        let mut body =
            serde_json::json!({ "sequence": presented.sequence, "identifier": identifier, "door": args.door });
        if let (Some(object), Ok(serde_json::Value::Object(decision))) =
            (body.as_object_mut(), serde_json::to_value(presented.decision))
        {
            object.extend(decision);
        }
        println!("{body}");
        return Ok(());
    }
    match presented.decision {
        AccessDecision::Granted => println!("GRANTED {identifier} at door {}", args.door),
        AccessDecision::Denied { reason } => {
            println!("DENIED {} {identifier} at door {} ({reason})", reason.code(), args.door);
        }
    }
    Ok(())
}

fn list(args: &ListArgs) -> anyhow::Result<()> {
    if args.limit > LIST_PAGE_LIMIT_MAX {
        return Err(UsageError(format!("--limit is at most {LIST_PAGE_LIMIT_MAX}")).into());
    }
    let controller = open(&args.device)?;
    for (identifier, grant) in controller.list(args.offset, args.limit) {
        if args.json {
            let mut line = serde_json::to_value(grant).context("cannot encode an entry")?;
            if let Some(object) = line.as_object_mut() {
                object.insert("identifier".to_owned(), serde_json::json!(identifier));
            }
            println!("{line}");
            continue;
        }
        let doors = grant.doors.map_or_else(
            || "all doors".to_owned(),
            |doors| format!("doors {}", doors.numbers().map(|door| door.to_string()).collect::<Vec<_>>().join(",")),
        );
        let blocked = if grant.blocked { " BLOCKED" } else { "" };
        let from = grant.valid_from.map(|at| format!(" from {at}")).unwrap_or_default();
        let until = grant.valid_until.map(|at| format!(" until {at}")).unwrap_or_default();
        println!("{identifier}\t{}\t{doors}{from}{until}{blocked}", grant.label);
    }
    Ok(())
}

fn put(args: &PutArgs) -> anyhow::Result<()> {
    let identifier = args.identifier.parse()?;
    let timestamp = |flag: &str, text: &Option<String>| -> anyhow::Result<Option<Timestamp>> {
        text.as_deref()
            .map(|text| Timestamp::parse_rfc3339(text).map_err(|error| UsageError(format!("--{flag} {text}: {error}"))))
            .transpose()
            .map_err(Into::into)
    };
    let doors = if args.doors.is_empty() {
        None
    } else {
        Some(Doors::from_numbers(args.doors.iter().copied()).map_err(|error| UsageError(format!("--doors: {error}")))?)
    };
    let grant = Grant {
        label: args.label.clone(),
        valid_from: timestamp("from", &args.from)?,
        valid_until: timestamp("until", &args.until)?,
        doors,
        blocked: args.blocked,
    };
    let mut controller = open(&args.device)?;
    let changed = controller.put(identifier, grant, &args.actor, SystemClock.now()).map_err(input_error)?;
    let verb = if changed.previous.is_some() { "replaced" } else { "added" };
    println!("{verb} {identifier} (event {}, list revision {})", changed.sequence, changed.revision);
    Ok(())
}

fn remove(args: &RemoveArgs) -> anyhow::Result<()> {
    let identifier = args.identifier.parse()?;
    let mut controller = open(&args.device)?;
    match controller.remove(identifier, &args.actor, SystemClock.now()).map_err(input_error)? {
        Some(changed) => {
            println!("removed {identifier} (event {}, list revision {})", changed.sequence, changed.revision)
        }
        None => return Err(UsageError(format!("{identifier} is not on the list")).into()),
    }
    Ok(())
}

/// Opens the controller in the device directory, with the device number given, found in the
/// directory, or the default for a new one.
fn open(args: &DeviceArgs) -> anyhow::Result<Controller> {
    let device = device_number(&args.dir, args.device)?;
    let (controller, recovery) = Controller::open(&args.dir, device, args.passback_seconds).map_err(|error| {
        if matches!(error, AccessError::Journal(JournalError::Locked { .. })) {
            return anyhow::Error::new(error)
                .context(format!("{} is in use (is `smartticket access serve` running on it?)", args.dir.display()));
        }
        input_error(error).context(format!("cannot open the controller in {}", args.dir.display()))
    })?;
    if let Some(torn) = recovery.torn_tail {
        tracing::warn!(path = %torn.path.display(), "access: the journal's last record was cut short by a crash and removed");
    }
    Ok(controller)
}

/// The device number: as given, else from the list file's header, else the default. A number
/// that disagrees with the directory is refused before anything is opened.
fn device_number(directory: &Path, given: Option<u32>) -> anyhow::Result<u32> {
    let path = directory.join(LIST_FILE_NAME);
    let mut header = [0_u8; LIST_HEADER_BYTES];
    let stored = match std::fs::File::open(&path) {
        Ok(mut file) => {
            use std::io::Read as _;
            file.read_exact(&mut header).with_context(|| format!("cannot read {}", path.display()))?;
            Some(decode_header(&header).with_context(|| format!("{} is not an access list", path.display()))?.device)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).with_context(|| format!("cannot open {}", path.display())),
    };
    match (given, stored) {
        (Some(given), Some(stored)) if given != stored => {
            Err(UsageError(format!("{} belongs to device {stored}, not {given}", directory.display())).into())
        }
        (Some(device), _) | (None, Some(device)) => Ok(device),
        (None, None) => Ok(DEVICE_DEFAULT),
    }
}

/// Bad input (exit code 2) as a usage error; device faults as they are (exit code 1).
fn input_error(error: AccessError) -> anyhow::Error {
    if error.is_bad_input() { UsageError(error.to_string()).into() } else { error.into() }
}
