//! Manifests as `serde_json::Value`s, read with rayward's own loader so tests see the same
//! documents (and the same scalar resolution, Kubernetes' own) as `rayward audit`.

use rayward_manifest::{Limits, Node};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One Kubernetes object of a file, as JSON, with where it came from.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub file: String,
    /// 1-based line where the object starts.
    pub line: u32,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub value: Value,
}

impl Manifest {
    /// `file:line Kind/name`, for messages.
    pub fn id(&self) -> String {
        format!("{}:{} {}/{}", self.file, self.line, self.kind, self.name)
    }

    /// True for RayCluster, RayJob, RayService and RayCronJob of group `ray.io`.
    pub fn is_ray(&self) -> bool {
        self.api_version.starts_with("ray.io/")
            && matches!(
                self.kind.as_str(),
                "RayCluster" | "RayJob" | "RayService" | "RayCronJob"
            )
    }
}

/// Every Kubernetes object of a file (documents that are not objects are skipped, `List`
/// items are objects). A file rayward cannot load is an error naming `file:line:col`.
pub fn load_manifests(path: &Path) -> Result<Vec<Manifest>, String> {
    let loaded = rayward_manifest::load_file(path, &Limits::default());
    if let Some(e) = loaded.error {
        return Err(e.to_string());
    }
    Ok(loaded
        .objects
        .into_iter()
        .map(|o| Manifest {
            file: o.file.to_string(),
            line: o.root.pos.line,
            api_version: o.api_version,
            kind: o.kind_name,
            name: o.name,
            namespace: o.namespace,
            value: to_json(&o.root),
        })
        .collect())
}

/// The KubeRay corpus beside the repository (`../shared/corpus/kuberay`).
pub fn corpus_dir() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/kuberay");
    assert!(
        p.is_dir(),
        "the shared corpus must sit at ../shared beside the repository: {}",
        p.display()
    );
    p
}

/// Every `.yaml`/`.yml` file under `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every object of every YAML file under `dir`; panics naming the first file that does not load.
pub fn load_dir(dir: &Path) -> Vec<Manifest> {
    yaml_files(dir)
        .iter()
        .flat_map(|f| load_manifests(f).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The Ray objects (RayCluster, RayJob, RayService, RayCronJob) of the KubeRay corpus.
pub fn corpus_ray_objects() -> Vec<Manifest> {
    load_dir(&corpus_dir())
        .into_iter()
        .filter(Manifest::is_ray)
        .collect()
}

/// A loaded tree as JSON, exactly as rayward's loader resolves it (Kubernetes' reading:
/// YAML 1.1 scalars, see `rayward_manifest::yaml11`), through the same writer the webhook
/// uses for its patches.
pub fn to_json(node: &Node) -> Value {
    serde_json::from_str(&rayward_manifest::emit::to_json(node))
        .expect("rayward_manifest::emit::to_json writes JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(yaml: &str) -> Value {
        let l = rayward_manifest::load_bytes("t.yaml", yaml.as_bytes(), &Limits::default());
        assert!(l.error.is_none(), "{:?}", l.error);
        to_json(&l.objects[0].root)
    }

    #[test]
    fn scalars_resolve_as_kubernetes_reads_them() {
        let v = json_of(
            "apiVersion: v1\nkind: X\na: 1\nb: '1'\nc: true\nd: yes\ne: 1.5\nf: ~\ng: 1e3\n\
             h: 0x10\ni: .5\nj: 1.2.3\nk: \"true\"\nl: 2Gi\nm: [1, x]\n",
        );
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"], "1");
        assert_eq!(v["c"], true);
        assert_eq!(v["d"], true);
        assert_eq!(v["e"], 1.5);
        assert_eq!(v["f"], Value::Null);
        assert_eq!(v["g"], 1000);
        assert_eq!(v["h"], 16);
        assert_eq!(v["i"], 0.5);
        assert_eq!(v["j"], "1.2.3");
        assert_eq!(v["k"], "true");
        assert_eq!(v["l"], "2Gi");
        assert_eq!(v["m"], serde_json::json!([1, "x"]));
    }
}
