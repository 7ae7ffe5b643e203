//! `rayward gateway --config FILE` and `rayward gateway passwd FILE USER`.

use crate::cli::{GatewayArgs, GatewayCommand, GatewayPasswdArgs};
use crate::exit;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, IsTerminal};

pub fn run(args: GatewayArgs) -> Result<u8> {
    match (args.command, args.config) {
        (Some(GatewayCommand::Passwd(a)), _) => passwd(a),
        (None, Some(config)) => {
            rayward_gateway::server::run_blocking(&config)?;
            Ok(exit::OK)
        }
        (None, None) => bail!("gateway needs --config FILE (or the passwd subcommand)"),
    }
}

fn read_password() -> Result<String> {
    if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("New password: ").context("reading password")?;
        let b = rpassword::prompt_password("Again: ").context("reading password")?;
        if a != b {
            bail!("the passwords differ");
        }
        Ok(a)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn passwd(a: GatewayPasswdArgs) -> Result<u8> {
    let pw = read_password()?;
    let existed = rayward_gateway::passwd::set_password(&a.file, &a.user, &pw, a.cost)?;
    eprintln!(
        "{} user {} in {}",
        if existed { "updated" } else { "added" },
        a.user,
        a.file.display()
    );
    Ok(exit::OK)
}
