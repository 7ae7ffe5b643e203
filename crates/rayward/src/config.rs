//! The project config file: which rules run, their severities, and rule settings.
//!
//! ```toml
//! fail-on = "medium"
//! [rules]
//! disable = ["RW602"]
//! severity = { RW201 = "low" }
//! [settings]
//! allowed-registries = ["registry.example.com/ml"]
//! allowed-host-paths = ["/mnt/datasets"]
//! min-ray-version = "2.54.0"
//! [harden]
//! namespace = "ray-team-a"
//! dashboard-from = ["10.0.0.0/8"]
//! ca-secret = "rayward-ray-ca"
//! ```

use anyhow::{bail, Context, Result};
use rayward_rules::{Selection, Settings, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File names looked for, in order, in the current folder and each parent.
pub const FILE_NAMES: &[&str] = &[".rayward.toml", "rayward.toml"];

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub fail_on: Option<String>,
    pub rules: RulesSection,
    pub settings: Settings,
    pub harden: HardenSection,
}

/// `[harden]`: defaults for `rayward harden`'s options (flags win).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct HardenSection {
    pub namespace: Option<String>,
    pub dashboard_from: Vec<String>,
    pub egress_to: Vec<String>,
    pub gateway: Option<bool>,
    pub ca_secret: Option<String>,
    pub cert_image: Option<String>,
    pub default_cpu: Option<String>,
    pub default_memory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RulesSection {
    pub disable: Vec<String>,
    pub only: Vec<String>,
    pub severity: BTreeMap<String, String>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let cfg: Config = toml::from_str(&text).map_err(|e| {
            let place = e
                .span()
                .map(|s| {
                    let line = 1 + text[..s.start].matches('\n').count();
                    format!(":{line}")
                })
                .unwrap_or_default();
            anyhow::anyhow!("{}{place}: {}", path.display(), e.message())
        })?;
        Ok(cfg)
    }

    /// The config a command runs with: none (`--no-config`), the file given
    /// (`--config`), or the first of [`FILE_NAMES`] found upward from the current folder.
    pub fn resolve(no_config: bool, given: Option<&Path>) -> Result<Config> {
        if no_config {
            return Ok(Config::default());
        }
        if let Some(p) = given {
            return Config::load(p);
        }
        let cwd = std::env::current_dir().context("cannot read the current folder")?;
        match Config::find(&cwd) {
            Some(p) => Config::load(&p),
            None => Ok(Config::default()),
        }
    }

    /// The `--fail-on` threshold: the flag, else the config's `fail-on`, else `low`.
    /// `None` (`none`) never fails on findings.
    pub fn fail_on(&self, flag: Option<&str>) -> Result<Option<Severity>> {
        match flag.or(self.fail_on.as_deref()) {
            None => Ok(Some(Severity::Low)),
            Some(s) if s.eq_ignore_ascii_case("none") => Ok(None),
            Some(s) => match Severity::parse(s) {
                Some(v) => Ok(Some(v)),
                None => {
                    bail!("--fail-on `{s}`: expected info, low, medium, high, critical or none")
                }
            },
        }
    }

    /// Finds the config upward from `dir`.
    pub fn find(dir: &Path) -> Option<PathBuf> {
        dir.ancestors()
            .flat_map(|d| FILE_NAMES.iter().map(move |n| d.join(n)))
            .find(|p| p.is_file())
    }

    /// The rule selection this config asks for.
    pub fn selection(&self) -> Result<Selection> {
        let mut severity = Vec::new();
        for (rule, sev) in &self.rules.severity {
            let Some(s) = Severity::parse(sev) else {
                bail!("config: severity `{sev}` for {rule} is not one of info, low, medium, high, critical");
            };
            severity.push((rule.clone(), s));
        }
        Ok(Selection {
            disable: self.rules.disable.clone(),
            only: self.rules.only.clone(),
            severity,
        })
    }
}
