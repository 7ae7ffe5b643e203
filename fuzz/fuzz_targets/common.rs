//! What both targets check on every input: loading never panics or hangs (libFuzzer's
//! `-timeout` catches hangs), every error names the file and, when it is about a place in
//! the file, a line and column; and whatever objects come out go through the inventory and
//! every rule without a panic.

use rayward_manifest::{load_bytes, Inventory, Limits, LoadErrorKind, Loaded};
use rayward_rules::{Engine, Settings};
use std::sync::OnceLock;

pub const NAME: &str = "fuzz.yaml";

/// Tighter than the defaults so that each run stays fast; `max_depth` keeps its default
/// since nesting is where parsers break.
pub fn limits() -> Limits {
    Limits {
        max_file_bytes: 1 << 20,
        max_alias_nodes: 20_000,
        max_nodes: 200_000,
        ..Limits::default()
    }
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::all(Settings::default()))
}

/// Loads `data`, checks the error (if any), runs the rules over the objects.
pub fn check(data: &[u8]) -> Loaded {
    let loaded = load_bytes(NAME, data, &limits());
    if let Some(e) = &loaded.error {
        assert_eq!(e.file, NAME, "error without the file name: {e:?}");
        let located = !matches!(
            e.kind,
            LoadErrorKind::TooLarge { .. } | LoadErrorKind::Io(_)
        );
        if located {
            assert!(
                e.line > 0 && e.col > 0,
                "error without a line/column: {e:?}"
            );
        }
        let shown = e.to_string();
        assert!(
            shown.starts_with(NAME),
            "message does not start with the file: {shown}"
        );
    }
    for o in &loaded.objects {
        assert_eq!(&*o.file, NAME);
        let _ = o.id();
    }
    if !loaded.objects.is_empty() {
        let inv = Inventory::new(&loaded.objects);
        let _ = inv.namespaces();
        let _ = inv.ray_pods().count();
        for f in engine().run(&loaded.objects) {
            assert_eq!(&*f.file, NAME);
        }
    }
    loaded
}
