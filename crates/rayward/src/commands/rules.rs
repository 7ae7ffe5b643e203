//! `rayward rules` and `rayward explain`.

use crate::cli::{ExplainArgs, RulesArgs, RulesFormat};
use crate::exit;
use anyhow::{bail, Result};
use rayward_rules::{docs, registry};

/// How `rayward harden` answers a rule id, if it does.
fn harden_fix(id: &str) -> Option<String> {
    rayward_harden::fix_map()
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, how)| how)
}

pub fn list(args: RulesArgs) -> Result<u8> {
    let rules = registry::all();
    match args.format {
        RulesFormat::Markdown => print!("{}", docs::catalog_markdown(&harden_fix)),
        RulesFormat::Json => {
            let v: Vec<_> = rules
                .iter()
                .map(|r| {
                    let m = r.meta();
                    serde_json::json!({
                        "id": m.id, "name": m.name, "severity": m.severity,
                        "section": m.section, "summary": m.summary, "fix": m.fix, "harden": harden_fix(m.id), "doc": m.doc(),
                        "ray_kinds": m.ray_kinds,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        RulesFormat::Text => {
            for r in rules {
                let m = r.meta();
                println!(
                    "{}  {:<40} {:<8} §{:<4} {}",
                    m.id,
                    m.name,
                    m.severity.as_str(),
                    m.section,
                    m.summary
                );
            }
        }
    }
    Ok(exit::OK)
}

pub fn explain(args: ExplainArgs) -> Result<u8> {
    match registry::find(&args.rule) {
        Some(r) => {
            print!(
                "{}",
                docs::rule_markdown(r.meta(), harden_fix(r.meta().id).as_deref())
            );
            Ok(exit::OK)
        }
        // The checks of `rayward probe`, documented the same way.
        None => match rayward_probe::checks::all()
            .into_iter()
            .find(|m| m.is(&args.rule))
        {
            Some(m) => {
                print!("{}", docs::rule_markdown(m, None));
                Ok(exit::OK)
            }
            None => bail!("unknown rule `{}` (see `rayward rules`)", args.rule),
        },
    }
}
