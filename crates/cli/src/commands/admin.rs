//! `smartticket admin create`: the first administrator (or another), from the command
//! line, for whoever has access to the server's configuration.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use smartticket_identity::staff::NewStaff;
use smartticket_identity::{AuditCtx, StaffRole};

use super::UsageError;
use crate::args::AdminCreateArgs;
use crate::config::Config;

/// Creates an administrator.
pub async fn create(config: &Config, args: &AdminCreateArgs) -> anyhow::Result<()> {
    let password = password(args)?;
    let db = super::open_migrated(config).await?;
    let (identity, _) = super::identity(config, &db)?;
    let new = NewStaff {
        email: args.email.clone(),
        display_name: args.name.clone(),
        role: StaffRole::Admin,
        password: password.clone(),
    };
    let created = identity.create_staff(&AuditCtx::system("cli"), new).await;
    db.close().await;
    let user = created.context("cannot create the administrator")?;
    println!("created administrator {} ({})", user.email, user.id);
    if args.generate_password {
        println!("password: {}", password.expose_secret());
        println!("it is shown only now; change it after the first login");
    }
    Ok(())
}

/// Characters of a generated password: 20 base64url characters carry 120 random bits.
const GENERATED_PASSWORD_BYTES: usize = 15;

/// A strong random password.
pub fn generate_password() -> anyhow::Result<SecretString> {
    use base64::Engine;
    let mut bytes = [0_u8; GENERATED_PASSWORD_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

fn password(args: &AdminCreateArgs) -> anyhow::Result<SecretString> {
    if args.generate_password {
        return generate_password();
    }
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        return Ok(SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(
            "no terminal to ask for a password: use --password-stdin or --generate-password".into(),
        )
        .into());
    }
    let first = rpassword::prompt_password("New administrator password: ")?;
    let second = rpassword::prompt_password("Repeat it: ")?;
    if first != second {
        return Err(UsageError("the passwords differ".into()).into());
    }
    Ok(SecretString::from(first))
}
