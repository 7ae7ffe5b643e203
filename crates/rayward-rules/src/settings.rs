//! Settings that change what rules accept, read from the config file.

use serde::Deserialize;

/// Rule settings. Every field has a safe default.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Registries (host, optionally with a path prefix, e.g. `registry.example.com/ml`)
    /// that images may come from. Empty: any registry is allowed and RW602 stays quiet.
    pub allowed_registries: Vec<String>,
    /// Path prefixes a `hostPath` volume may use (read-only even then).
    pub allowed_host_paths: Vec<String>,
    /// The oldest Ray version accepted, e.g. `2.54.0`; older ones are findings of RW603
    /// even when no CVE applies.
    pub min_ray_version: Option<String>,
}
