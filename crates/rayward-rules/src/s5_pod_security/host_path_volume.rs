use crate::fix::{for_each_container, for_each_pod_spec, Changes, Fix, FixContext};
use crate::util::pod_security::{describe_container, describe_pod, host_path_allowed};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{Node as TreeNode, Object};
use rayward_manifest::{Node, Workload};

declare_rule! {
    /// ## What it checks
    /// `hostPath` volumes in any pod template (Ray head and worker groups, RayJob
    /// submitters, plain workloads), two ways:
    /// - the path must lie under one of the prefixes in the config's
    ///   `allowed-host-paths`, matched on whole path components (`/data` allows `/data`
    ///   and `/data/x`, not `/database`; a path with `..` is never under a prefix). With no
    ///   prefixes configured every hostPath is outside. Reported at the volume's
    ///   `hostPath.path`;
    /// - every container that mounts the volume (init containers and the autoscaler's
    ///   `autoscalerOptions.volumeMounts` included) must mount it `readOnly: true`, allowed
    ///   prefix or not. Reported at the `volumeMounts` entry (its `readOnly` when set).
    ///
    /// ## Why it matters (guide §5)
    /// A hostPath volume is the node's file system inside the pod, and every Ray job can
    /// read and write what the Ray containers can. `/`, `/etc`, `/var/lib/kubelet`,
    /// `/var/log` or a container runtime socket hand over the node and every other pod on
    /// it; even a data directory, mounted writable, lets one team's job tamper with what
    /// another team's pods read. The guide asks to restrict hostPath to known prefixes and
    /// to mount it read-only.
    ///
    /// ## Example
    /// ```yaml
    /// spec:
    ///   containers:
    ///   - name: ray-worker
    ///     volumeMounts:
    ///     - name: host
    ///       mountPath: /host
    ///   volumes:
    ///   - name: host
    ///     hostPath:
    ///       path: /
    /// ```
    ///
    /// ## Fix
    /// Use a PersistentVolumeClaim, or a hostPath under an allowed prefix mounted
    /// read-only:
    /// ```yaml
    /// spec:
    ///   containers:
    ///   - name: ray-worker
    ///     volumeMounts:
    ///     - name: datasets
    ///       mountPath: /datasets
    ///       readOnly: true
    ///   volumes:
    ///   - name: datasets
    ///     hostPath:
    ///       path: /data/datasets   # with `allowed-host-paths = ["/data"]` in the config
    /// ```
    pub struct HostPathVolume {
        id: "RW505",
        name: "host-path-volume",
        severity: High,
        section: "5",
        summary: "hostPath volume outside the allowed prefixes or mounted writable",
        fix: "Use a PersistentVolumeClaim, or a hostPath under `allowed-host-paths` mounted with `readOnly: true`.",
        scope: Object,
        fixer: Some(&HostPathVolume),
        companion: None,
    }
}

/// The `hostPath` of the volume named `name` in a pod spec.
fn host_path_of<'a>(pod_spec: &'a Node, name: &str) -> Option<&'a Node> {
    pod_spec
        .get("volumes")?
        .as_seq()
        .iter()
        .rev()
        .find(|v| v.get("name").and_then(Node::as_str) == Some(name))?
        .get("hostPath")
        .filter(|h| !h.is_null())
}

impl Rule for HostPathVolume {
    fn check(&self, w: &Workload<'_>, cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let allowed = &cx.settings.allowed_host_paths;
        let allowed_text = if allowed.is_empty() {
            "no `allowed-host-paths` are configured".to_string()
        } else {
            format!("allowed prefixes: {}", allowed.join(", "))
        };
        for t in &w.templates {
            let Some(volumes) = t.field("volumes") else {
                continue;
            };
            let base = t.spec_path().key("volumes");
            for (i, v) in volumes.as_seq().iter().enumerate() {
                let Some(hp) = v.get("hostPath").filter(|h| !h.is_null()) else {
                    continue;
                };
                let name = v.get("name").and_then(Node::as_str).unwrap_or("");
                let path_node = hp.get("path");
                let path = path_node.and_then(Node::as_str).unwrap_or("");
                if host_path_allowed(path, allowed) {
                    continue;
                }
                out.report(
                    w.obj,
                    base.idx(i).keys(&["hostPath", "path"]),
                    path_node.map_or(hp.pos, |n| n.pos),
                    format!(
                        "{}: volume `{name}` mounts host path `{path}`, which is not under an \
                         allowed prefix ({allowed_text})",
                        describe_pod(t)
                    ),
                );
            }
        }
        for (t, c) in w.containers() {
            let Some(mounts) = c.get("volumeMounts") else {
                continue;
            };
            let base = c.field_path("volumeMounts");
            for (j, m) in mounts.as_seq().iter().enumerate() {
                let Some(name) = m.get("name").and_then(Node::as_str) else {
                    continue;
                };
                let Some(hp) = host_path_of(c.pod_spec, name) else {
                    continue;
                };
                let ro = m.get("readOnly");
                if ro.and_then(Node::as_bool) == Some(true) {
                    continue;
                }
                let path = hp.get("path").and_then(Node::as_str).unwrap_or("");
                out.report_fix(
                    w.obj,
                    base.idx(j).key("readOnly"),
                    ro.map_or(m.pos, |n| n.pos),
                    format!(
                        "{} mounts hostPath volume `{name}` (`{path}`) writable",
                        describe_container(t, &c)
                    ),
                    "Add `readOnly: true` to the volumeMount.",
                );
            }
        }
    }
}

impl Fix for HostPathVolume {
    fn safe(&self) -> bool {
        false
    }

    /// Mounts of hostPath volumes become `readOnly: true`. A hostPath outside the allowed
    /// prefixes is not changed: where the data should come from instead is the user's
    /// choice, and the finding stays.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        let mut host: Vec<(rayward_manifest::JsonPath, Vec<String>)> = Vec::new();
        for_each_pod_spec(obj, |t, spec| {
            let names = spec
                .get("volumes")
                .map(TreeNode::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
                .filter_map(|v| v.get("name").and_then(TreeNode::as_str).map(str::to_string))
                .collect();
            host.push((t.spec_path.clone(), names));
        });
        for_each_container(obj, false, |t, c| {
            let Some((_, names)) = host.iter().find(|(p, _)| *p == t.pod_spec_path) else {
                return;
            };
            let Some(mounts) = c.get_mut("volumeMounts") else {
                return;
            };
            for (j, m) in mounts.seq_mut().iter_mut().enumerate() {
                let Some(name) = m.get("name").and_then(TreeNode::as_str) else {
                    continue;
                };
                if names.iter().any(|n| n == name)
                    && m.get("readOnly").and_then(TreeNode::as_bool) != Some(true)
                {
                    m.set("readOnly", TreeNode::boolean(true));
                    ch.add(
                        &t.path.key("volumeMounts").idx(j).key("readOnly"),
                        "mount the hostPath volume read-only",
                    );
                }
            }
        });
        ch.list
    }
}

#[cfg(test)]
mod tests {
    use crate::{Engine, Settings};
    use rayward_manifest::{load_bytes, Limits};

    const POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: app
    image: nginx:1.27
    volumeMounts:
    - {name: data, mountPath: /data, readOnly: true}
  volumes:
  - name: data
    hostPath:
      path: /data/x
";

    fn lines(allowed: &[&str]) -> Vec<u32> {
        let settings = Settings {
            allowed_host_paths: allowed.iter().map(|s| s.to_string()).collect(),
            ..Settings::default()
        };
        let loaded = load_bytes("p.yaml", POD.as_bytes(), &Limits::default());
        Engine::all(settings)
            .run(&loaded.objects)
            .iter()
            .filter(|f| f.rule_id == "RW505")
            .map(|f| f.line)
            .collect()
    }

    #[test]
    fn without_allowed_prefixes_every_host_path_is_outside() {
        assert_eq!(lines(&[]), vec![14]);
    }

    #[test]
    fn an_allowed_prefix_and_read_only_mount_pass() {
        assert_eq!(lines(&["/data"]), Vec::<u32>::new());
        assert_eq!(lines(&["/dat"]), vec![14]);
    }
}
