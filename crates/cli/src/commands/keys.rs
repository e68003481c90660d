//! `smartticket keys …`: create, list, rotate and retire keys; split a software keystore
//! into Shamir shares and restore it; export a validator's secure-module profile.

use std::path::{Path, PathBuf};

use anyhow::Context;
use smartticket_crypto::hsm::backup;
use smartticket_crypto::hsm::pkcs11::Pkcs11Config;
use smartticket_crypto::hsm::soft::{FileKeystore, SealCost, SoftHsm};
use smartticket_crypto::hsm::{Hsm, HsmSettings, KeyAdmin};
use smartticket_crypto::keys::{KeyRef, KeyRole, KeyVersion};

use super::UsageError;
use crate::args::{KeysCommand, RoleSet};
use crate::config::{Config, HsmBackend};
use crate::secrets;

const PASSPHRASE_VARIABLE: &str = "SMARTTICKET_HSM__PASSPHRASE";
const PIN_VARIABLE: &str = "SMARTTICKET_HSM__PKCS11_PIN";

/// How the configured HSM is opened.
pub fn settings(config: &Config) -> anyhow::Result<HsmSettings> {
    match config.hsm.backend {
        HsmBackend::Soft => {
            let keystore = config.keystore_path();
            if !keystore.exists() {
                return Err(UsageError(format!(
                    "no keystore at {}: run `smartticket keys init` first",
                    keystore.display()
                ))
                .into());
            }
            let passphrase = secrets::existing(
                "keystore passphrase",
                &config.hsm.passphrase,
                &config.hsm.passphrase_file,
                PASSPHRASE_VARIABLE,
            )?;
            Ok(HsmSettings::Soft { keystore, passphrase, cost: SealCost::default() })
        }
        HsmBackend::Pkcs11 => Ok(HsmSettings::Pkcs11(pkcs11_config(config)?)),
    }
}

fn pkcs11_config(config: &Config) -> anyhow::Result<Pkcs11Config> {
    let pin = secrets::existing("PKCS#11 user PIN", &config.hsm.pkcs11_pin, &config.hsm.pkcs11_pin_file, PIN_VARIABLE)?;
    Ok(Pkcs11Config {
        module: PathBuf::from(&config.hsm.pkcs11_module),
        token_label: config.hsm.pkcs11_token.clone(),
        pin,
        namespace: config.hsm.namespace.clone(),
    })
}

/// Opens the configured HSM.
pub fn open(config: &Config) -> anyhow::Result<Box<dyn KeyAdmin>> {
    smartticket_crypto::hsm::open(settings(config)?).context("cannot open the HSM")
}

fn roles(set: RoleSet) -> Vec<KeyRole> {
    match set {
        RoleSet::All => KeyRole::ALL.to_vec(),
        RoleSet::Issuer => KeyRole::ALL.into_iter().filter(|r| *r != KeyRole::Credit).collect(),
        RoleSet::Minting => vec![KeyRole::Credit],
    }
}

/// Runs a `keys` command.
pub fn run(config: &Config, command: &KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Init { roles: set } => init(config, *set),
        KeysCommand::List { json } => list(open(config)?.as_ref(), *json),
        KeysCommand::Rotate { role } => {
            let mut hsm = open(config)?;
            let info = hsm.rotate(*role)?;
            println!("{} is now active (check value {}); older versions verify only", info.key, info.kcv);
            Ok(())
        }
        KeysCommand::Retire { role, version } => {
            let mut hsm = open(config)?;
            let key = KeyRef { role: *role, version: KeyVersion::new(*version)? };
            hsm.retire(key)?;
            println!("{key} retired: cards still on it can no longer be read or verified");
            Ok(())
        }
        KeysCommand::Split { threshold, shares, out } => split(config, *threshold, *shares, out),
        KeysCommand::Restore { shares, out } => restore(config, shares, out.as_deref()),
        KeysCommand::ExportSam { out, passphrase_file } => export_sam(config, out, passphrase_file.as_deref()),
    }
}

fn init(config: &Config, set: RoleSet) -> anyhow::Result<()> {
    let roles = roles(set);
    match config.hsm.backend {
        HsmBackend::Soft => {
            let path = config.keystore_path();
            if path.exists() {
                return Err(UsageError(format!("{} already exists; keys are never overwritten", path.display())).into());
            }
            let passphrase = secrets::new(
                "keystore passphrase",
                &config.hsm.passphrase,
                &config.hsm.passphrase_file,
                PASSPHRASE_VARIABLE,
            )?;
            let keystore = FileKeystore::create(&path, passphrase, SealCost::default(), &roles)?;
            println!("created {}", keystore.describe());
            list(&keystore, false)
        }
        HsmBackend::Pkcs11 => {
            let mut hsm = smartticket_crypto::hsm::open(HsmSettings::Pkcs11(pkcs11_config(config)?))?;
            let held = hsm.inventory()?;
            for role in roles {
                if held.iter().any(|info| info.key.role == role) {
                    println!("{role}: already present, left as it is");
                } else {
                    let info = hsm.rotate(role)?;
                    println!("{}: generated in the token (check value {})", info.key, info.kcv);
                }
            }
            list(hsm.as_ref(), false)
        }
    }
}

fn list(hsm: &dyn Hsm, json: bool) -> anyhow::Result<()> {
    let inventory = hsm.inventory()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "hsm": hsm.describe(), "keys": inventory }))?);
        return Ok(());
    }
    println!("{}", hsm.describe());
    println!("  {:<16} {:>7}  {:<11} check", "role", "version", "state");
    for info in inventory {
        let state = match info.state {
            smartticket_crypto::keys::KeyState::Active => "active",
            smartticket_crypto::keys::KeyState::VerifyOnly => "verify-only",
        };
        println!("  {:<16} {:>7}  {:<11} {}", info.key.role, info.key.version.get(), state, info.kcv);
    }
    Ok(())
}

fn open_soft(config: &Config, purpose: &str) -> anyhow::Result<FileKeystore> {
    if config.hsm.backend != HsmBackend::Soft {
        return Err(UsageError(format!(
            "{purpose} works on software keystores only: PKCS#11 masters are non-extractable by design; back them up with the HSM vendor's key ceremony"
        ))
        .into());
    }
    let HsmSettings::Soft { keystore, passphrase, cost } = settings(config)? else {
        return Err(UsageError("not a software keystore".into()).into());
    };
    Ok(FileKeystore::open(&keystore, passphrase, cost)?)
}

fn split(config: &Config, threshold: u8, shares: u8, out: &Path) -> anyhow::Result<()> {
    let keystore = open_soft(config, "splitting")?;
    let files = backup::split(keystore.soft(), threshold, shares)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let paths: Vec<PathBuf> =
        files.iter().map(|f| out.join(format!("share-{}-of-{}.json", f.index, f.shares))).collect();
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        return Err(UsageError(format!("{} already exists; choose an empty directory", existing.display())).into());
    }
    for (file, path) in files.iter().zip(&paths) {
        backup::write_share(path, file)?;
        println!("wrote {}", path.display());
    }
    println!("any {threshold} of these {shares} shares restore the keystore; give each to a different custodian");
    Ok(())
}

fn restore(config: &Config, shares: &[PathBuf], out: Option<&Path>) -> anyhow::Result<()> {
    let files = shares.iter().map(|p| backup::read_share(p)).collect::<Result<Vec<_>, _>>()?;
    let hsm: SoftHsm = backup::restore(&files)?;
    let path = out.map(Path::to_path_buf).unwrap_or_else(|| config.keystore_path());
    let passphrase =
        secrets::new("keystore passphrase", &config.hsm.passphrase, &config.hsm.passphrase_file, PASSPHRASE_VARIABLE)?;
    let keystore = FileKeystore::adopt(&path, passphrase, SealCost::default(), hsm)?;
    println!("restored {} from {} shares", keystore.describe(), files.len());
    list(&keystore, false)
}

fn export_sam(config: &Config, out: &Path, passphrase_file: Option<&Path>) -> anyhow::Result<()> {
    let keystore = open_soft(config, "exporting a secure-module profile")?;
    let profile = keystore.soft().restricted_to(&KeyRole::SAM_PROFILE);
    let file = passphrase_file.map(|p| p.display().to_string()).unwrap_or_default();
    let passphrase =
        secrets::new("secure-module passphrase", &crate::config::Secret::default(), &file, "--passphrase-file")?;
    if out.exists() {
        return Err(UsageError(format!("{} already exists", out.display())).into());
    }
    profile.save(out, &passphrase, SealCost::default())?;
    println!("wrote {}: a validator profile with the debit, read and tokenisation keys only", out.display());
    list(&profile, false)
}
