//! What a rule is: its metadata (documentation included) and the checks it runs.

use crate::finding::{Finding, Sink};
pub use crate::meta::{RuleMeta, Scope, Severity};
use crate::settings::Settings;
use rayward_manifest::{Inventory, Workload};

/// What every run gives a rule.
pub struct Ctx<'a> {
    pub settings: &'a Settings,
}

/// What [`declare_rule!`](crate::declare_rule) generates for a rule from its declaration:
/// its metadata and its fix. A rule never writes these by hand.
pub trait Declared {
    fn meta(&self) -> &'static RuleMeta;

    /// The rule's fix, when rewriting the object can answer its findings
    /// ([`Fix`](crate::fix::Fix), implemented in the rule's own file).
    fn fixer(&self) -> Option<&'static dyn crate::fix::Fix>;
}

/// A rule. Per-object rules implement [`Rule::check`]; rules that need every object of a
/// run (NetworkPolicy coverage, quotas, RBAC) implement [`Rule::check_inventory`].
pub trait Rule: Declared + Send + Sync {
    fn check(&self, _w: &Workload<'_>, _cx: &Ctx<'_>, _out: &mut Sink<'_>) {}

    fn check_inventory(&self, _inv: &Inventory<'_>, _cx: &Ctx<'_>, _out: &mut Sink<'_>) {}

    /// For rules that judge what the other rules found (a running pod that still has a
    /// problem its owner no longer has): called once per run, after every
    /// [`Rule::check_inventory`], with all findings so far.
    fn check_findings(
        &self,
        _inv: &Inventory<'_>,
        _found: &[Finding],
        _cx: &Ctx<'_>,
        _out: &mut Sink<'_>,
    ) {
    }
}

/// Declares a rule struct whose doc comment is its documentation.
///
/// ```text
/// declare_rule! {
///     /// ## What it checks
///     /// ...
///     pub struct Privileged {
///         id: "RW501", name: "privileged-container", severity: Critical, section: "5",
///         summary: "Container runs privileged",
///         fix: "Remove `securityContext.privileged: true`.",
///         scope: Object,                 // Object | WholeRun | JudgesOthers
///         fixer: Some(&Privileged),      // the `Fix` harden applies, or None
///         companion: None,               // Some("the object harden writes beside it")
///         ray_kinds: &["RayJob"],        // optional: the Ray kinds it judges (default all)
///     }
/// }
/// ```
#[macro_export]
macro_rules! declare_rule {
    (@kinds) => {
        $crate::meta::ALL_RAY_KINDS
    };
    (@kinds $kinds:expr) => {
        $kinds
    };
    (
        $(#[doc = $doc:literal])*
        $vis:vis struct $name:ident {
            id: $id:literal,
            name: $rname:literal,
            severity: $sev:ident,
            section: $sec:literal,
            summary: $summary:literal,
            fix: $fix:literal,
            scope: $scope:ident,
            fixer: $fixer:expr,
            companion: $companion:expr
            $(, ray_kinds: $kinds:expr)? $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Default, Clone, Copy)]
        $vis struct $name;

        impl $name {
            pub const META: $crate::RuleMeta = $crate::RuleMeta {
                id: $id,
                name: $rname,
                severity: $crate::Severity::$sev,
                section: $sec,
                summary: $summary,
                fix: $fix,
                raw_doc: concat!($($doc, "\n"),*),
                scope: $crate::Scope::$scope,
                companion: $companion,
                ray_kinds: $crate::declare_rule!(@kinds $($kinds)?),
            };
        }

        impl $crate::Declared for $name {
            fn meta(&self) -> &'static $crate::RuleMeta {
                &Self::META
            }

            fn fixer(&self) -> Option<&'static dyn $crate::fix::Fix> {
                $fixer
            }
        }
    };
}
