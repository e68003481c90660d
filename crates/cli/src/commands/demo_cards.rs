//! The demo's keys: a software keystore under a generated passphrase, kept in a private
//! file the data directory's `smartticket.toml` names. The cards are made and sold in
//! [`super::demo_sales`].

use std::path::Path;

use anyhow::Context;
use secrecy::ExposeSecret;
use smartticket_crypto::hsm::Hsm;
use smartticket_crypto::hsm::soft::{FileKeystore, SealCost};
use smartticket_crypto::keys::KeyRole;

use super::admin::generate_password;
use crate::args::DATA_DIR_CONFIG_FILE;
use crate::config::{Config, HsmBackend};

/// Where the demo keeps its simulated cards.
pub const CARDS_DIR: &str = "cards";

/// Creates the demo keystore and returns the configuration that opens it.
pub fn prepare_keys(mut config: Config) -> anyhow::Result<Config> {
    config.hsm.backend = HsmBackend::Soft;
    let keys_dir = config.data_dir.join("keys");
    std::fs::create_dir_all(&keys_dir)?;
    let passphrase_file = keys_dir.join("passphrase");
    // Letters and digits from the OS RNG, then words, so the policy's checker is happy.
    let passphrase = format!("demo {} keystore", generate_password()?.expose_secret());
    write_private(&passphrase_file, &format!("{passphrase}\n"))?;
    let passphrase_file = std::fs::canonicalize(&passphrase_file)?;
    let settings = format!(
        "# Written by `smartticket demo`: this data directory's own settings.\n\
         # The passphrase file sits beside the keystore only because this is a demo.\n\
         [hsm]\nbackend = \"soft\"\npassphrase_file = \"{}\"\n",
        passphrase_file.display()
    );
    write_private(&config.data_dir.join(DATA_DIR_CONFIG_FILE), &settings)?;
    config.hsm.passphrase_file = passphrase_file.display().to_string();
    let keystore =
        FileKeystore::create(&config.keystore_path(), passphrase.into(), SealCost::default(), &KeyRole::ALL)?;
    println!("\nKeys: {} (all roles, version 1; `smartticket keys list` shows them)", keystore.describe());
    Ok(config)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}
