use super::for_each_image;
use crate::util::image::ImageRef;
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;

declare_rule! {
    /// ## What it checks
    /// Only when `allowed-registries` is configured (it is empty by default, and then this
    /// rule reports nothing): every container image (init and main containers of Ray head
    /// and worker groups, `autoscalerOptions.image`, RayJob submitters, plain workloads)
    /// whose `registry/repository` is not under one of the entries.
    ///
    /// - An entry that is a host (`registry.example.com`, `localhost:5000`) allows every
    ///   repository of that registry.
    /// - An entry with a path (`registry.example.com/ml`) allows the repositories under that
    ///   path (`registry.example.com/ml/ray`), not `registry.example.com/mlops/ray`.
    /// - Images without a registry are on Docker Hub: `rayproject/ray` is
    ///   `docker.io/rayproject/ray` and `busybox` is `docker.io/library/busybox`.
    ///   `index.docker.io` and `registry-1.docker.io` count as `docker.io`, and an entry
    ///   whose first part is not a host (`rayproject`) means `docker.io/rayproject`.
    /// - Hosts compare case-insensitively; templated images (`$IMAGE`) are skipped.
    ///
    /// ```toml
    /// allowed-registries = ["registry.example.com/ml", "registry.example.com/mirror"]
    /// ```
    ///
    /// ## Why it matters (guide §6)
    /// The guide asks for images that were scanned and are delivered securely. That holds
    /// for the registry the platform controls (mirrored, scanned, signed); an image pulled
    /// straight from a public registry skips that pipeline, and whoever controls that
    /// repository controls code running next to Ray's credentials.
    ///
    /// ## Example
    /// ```yaml
    /// containers:
    /// - name: ray-head
    ///   image: rayproject/ray:2.56.0
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// containers:
    /// - name: ray-head
    ///   image: registry.example.com/ml/rayproject/ray:2.56.0
    /// ```
    pub struct ImageRegistryNotAllowed {
        id: "RW602",
        name: "image-registry-not-allowed",
        severity: High,
        section: "6",
        summary: "Container image is not from an allowed registry (needs `allowed-registries`)",
        fix: "Mirror the image into an allowed registry and use that reference, or add its registry to `allowed-registries`.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

/// Docker Hub's aliases.
fn host(h: &str) -> String {
    let h = h.to_ascii_lowercase();
    match h.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => h,
    }
}

/// `registry/repository` of an image, Docker Hub's implicit `library/` included.
fn image_name(r: &ImageRef<'_>) -> String {
    let h = host(r.registry);
    if h == "docker.io" && !r.repository.contains('/') {
        format!("{h}/library/{}", r.repository)
    } else {
        format!("{h}/{}", r.repository)
    }
}

/// An allowlist entry in the same form: lower-case host, no scheme, no trailing `/`.
fn entry_name(e: &str) -> String {
    let e = e.trim();
    let e = e
        .strip_prefix("https://")
        .or_else(|| e.strip_prefix("http://"))
        .unwrap_or(e)
        .trim_end_matches('/');
    match e.split_once('/') {
        Some((first, rest)) if is_host(first) => format!("{}/{rest}", host(first)),
        Some(_) => format!("docker.io/{e}"),
        None if is_host(e) => host(e),
        None => format!("docker.io/{e}"),
    }
}

/// Docker's rule: a first component with `.` or `:`, or `localhost`, is a registry host.
fn is_host(s: &str) -> bool {
    s.contains('.') || s.contains(':') || s.eq_ignore_ascii_case("localhost")
}

fn allowed(name: &str, entries: &[String]) -> bool {
    entries.iter().any(|e| {
        name == e
            || name
                .strip_prefix(e.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

impl Rule for ImageRegistryNotAllowed {
    fn check(&self, w: &Workload<'_>, cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let entries: Vec<String> = cx
            .settings
            .allowed_registries
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| entry_name(e))
            .collect();
        if entries.is_empty() {
            return;
        }
        for_each_image(w, |u| {
            let name = image_name(&ImageRef::parse(u.image));
            if allowed(&name, &entries) {
                return;
            }
            let list = entries
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ");
            out.report(
                w.obj,
                u.path(),
                u.node.pos,
                format!(
                    "image `{}` of {} comes from `{name}`, which is not under an allowed registry ({list})",
                    u.image,
                    u.who()
                ),
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(image: &str, entries: &[&str]) -> bool {
        let entries: Vec<String> = entries.iter().map(|e| entry_name(e)).collect();
        allowed(&image_name(&ImageRef::parse(image)), &entries)
    }

    #[test]
    fn matches_hosts_and_path_prefixes() {
        assert!(ok("rayproject/ray:2.56.0", &["docker.io"]));
        assert!(ok("rayproject/ray:2.56.0", &["docker.io/rayproject"]));
        assert!(ok("rayproject/ray:2.56.0", &["rayproject"]));
        assert!(ok("index.docker.io/rayproject/ray", &["docker.io"]));
        assert!(ok("busybox:1.36", &["docker.io/library"]));
        assert!(!ok("busybox:1.36", &["docker.io/rayproject"]));
        assert!(ok(
            "Registry.Example.com/ml/ray:1",
            &["registry.example.com"]
        ));
        assert!(ok(
            "registry.example.com/ml/ray:1",
            &["https://registry.example.com/ml/"]
        ));
        assert!(!ok(
            "registry.example.com/mlops/ray:1",
            &["registry.example.com/ml"]
        ));
        assert!(!ok(
            "registry.example.com.evil.io/ray:1",
            &["registry.example.com"]
        ));
        assert!(!ok("quay.io/kuberay/submitter:v1.5.1", &["docker.io"]));
        assert!(ok("localhost:5000/ray@sha256:ab", &["localhost:5000"]));
    }

    fn run(settings: crate::Settings) -> usize {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: quay.io/x/y:1}\n";
        let l = rayward_manifest::load_bytes(
            "t.yaml",
            yaml.as_bytes(),
            &rayward_manifest::Limits::default(),
        );
        crate::Engine::all(settings)
            .run(&l.objects)
            .iter()
            .filter(|f| f.rule_id == "RW602")
            .count()
    }

    #[test]
    fn quiet_without_an_allowlist() {
        assert_eq!(run(crate::Settings::default()), 0);
        let blank = crate::Settings {
            allowed_registries: vec![" ".into()],
            ..Default::default()
        };
        assert_eq!(run(blank), 0);
        let set = crate::Settings {
            allowed_registries: vec!["docker.io".into()],
            ..Default::default()
        };
        assert_eq!(run(set), 1);
    }
}
