//! `rayward certs ca|node|check`.

use crate::cli::{CertsArgs, CertsCommand, KeyAlgArg};
use crate::exit;
use anyhow::Result;
use rayward_certs::{CaOptions, CheckOptions, KeyAlg, NodeOptions};

fn key(k: KeyAlgArg) -> KeyAlg {
    match k {
        KeyAlgArg::EcdsaP256 => KeyAlg::EcdsaP256,
        KeyAlgArg::EcdsaP384 => KeyAlg::EcdsaP384,
        KeyAlgArg::Rsa2048 => KeyAlg::Rsa2048,
        KeyAlgArg::Rsa3072 => KeyAlg::Rsa3072,
    }
}

pub fn run(args: CertsArgs) -> Result<u8> {
    match args.command {
        CertsCommand::Ca(a) => {
            let opts = CaOptions {
                key: key(a.key),
                days: a.days,
                common_name: a.common_name,
                force: a.force,
            };
            let written = rayward_certs::create_ca(&a.out, &opts)?;
            for p in &written {
                eprintln!("wrote {}", p.display());
            }
            if let Some(name) = &a.secret {
                print!(
                    "{}",
                    rayward_certs::ca_secret_yaml(&a.out, name, a.namespace.as_deref())?
                );
            }
            Ok(exit::OK)
        }
        CertsCommand::Node(a) => {
            let opts = NodeOptions {
                key: key(a.key),
                days: a.days,
                ips: a.ip,
                pod_ip: std::env::var("POD_IP").ok(),
                dns: a.dns,
                force: a.force,
            };
            for p in rayward_certs::issue_node(&a.ca, &a.out, &opts)? {
                eprintln!("wrote {}", p.display());
            }
            Ok(exit::OK)
        }
        CertsCommand::Check(a) => {
            let report = rayward_certs::check(&a.dir, &CheckOptions { ca: a.ca, ip: a.ip })?;
            print!("{report}");
            Ok(if report.ok() {
                exit::OK
            } else {
                exit::FINDINGS
            })
        }
    }
}
