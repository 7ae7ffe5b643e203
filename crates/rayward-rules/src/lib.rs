//! The rule catalog of rayward.
//!
//! One rule per file, in a folder per section of the guide (`s5_pod_security/…`). Each
//! rule's doc comment is its documentation: `rayward explain`, `rayward rules` and
//! `docs/rules.md` are generated from it. Rules read the typed views of
//! `rayward-manifest` and write [`Finding`]s to a [`Sink`].

pub mod docs;
pub mod engine;
pub mod finding;
pub mod fix;
pub mod meta;
pub mod registry;
pub mod relate;
pub mod rule;
pub mod settings;
pub mod suppress;
pub mod util;

mod s1_1_tls;
mod s1_4_network;
mod s1_5_exposure;
mod s2_tenancy;
mod s4_rbac;
mod s5_pod_security;
mod s6_images;
mod s7_resources;
mod s8_credentials;
mod s9_jobs;

pub use engine::{Checked, Engine, Related, Run, Selection, UnknownRule, IGNORE_ANNOTATION};
pub use finding::{object_pos, Finding, ObjectRef, Sink};
pub use fix::{Change, Fix, FixContext, FixOptions};
pub use rule::{Ctx, Declared, Rule, RuleMeta, Scope, Severity};
/// Rules other crates name (by `Rule::META.id`, never by a string).
pub use s1_4_network::RayPodsWithoutNetworkPolicy;
pub use s2_tenancy::NamespaceWithoutQuota;
pub use settings::Settings;
/// What the RBAC rules (§4) expect, for harden to write exactly that: the dedicated
/// ServiceAccount's name and what a head pod needs from the API server.
pub use util::rbac::{dedicated_service_account, head_api_need, ray_service_accounts};
