use crate::fix::{for_each_container, Changes, Fix, FixContext};
use crate::util::pod_security::{describe_container, normalize_cap};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Object;
use rayward_manifest::Workload;

/// Capabilities reported when added, with what each gives a Ray job. Names without the
/// `CAP_` prefix, upper case (see [`normalize_cap`]).
const DANGEROUS: &[(&str, &str)] = &[
    ("ALL", "every capability, as good as privileged"),
    (
        "SYS_ADMIN",
        "mount, namespaces, cgroups and more: the classic container escape",
    ),
    (
        "SYS_MODULE",
        "loading kernel modules, i.e. running code in the node's kernel",
    ),
    ("SYS_RAWIO", "raw I/O ports and device memory of the node"),
    (
        "SYS_PTRACE",
        "tracing and reading the memory of other processes it can see",
    ),
    ("SYS_BOOT", "rebooting the node or loading a new kernel"),
    (
        "SYS_TIME",
        "setting the node's clock, which is not namespaced",
    ),
    (
        "DAC_READ_SEARCH",
        "open_by_handle_at, which reads files of the node outside the container",
    ),
    (
        "NET_ADMIN",
        "rewriting routes, firewall rules and interfaces of the pod's network",
    ),
    (
        "NET_RAW",
        "raw sockets, for spoofing and sniffing traffic of the pod network",
    ),
    ("BPF", "loading eBPF programs into the node's kernel"),
    (
        "PERFMON",
        "kernel performance monitoring, which leaks kernel and other processes' data",
    ),
    (
        "SYSLOG",
        "reading the kernel log, which leaks kernel addresses",
    ),
    ("MAC_ADMIN", "changing the node's AppArmor/SELinux policy"),
    (
        "MAC_OVERRIDE",
        "bypassing the node's AppArmor/SELinux policy",
    ),
    ("AUDIT_CONTROL", "changing the node's kernel audit rules"),
];

declare_rule! {
    /// ## What it checks
    /// `securityContext.capabilities.add` entries of any container (Ray head and worker
    /// containers, init containers, the autoscaler, RayJob submitters, plain workloads)
    /// that name a dangerous capability, or `ALL`. Names compare case-insensitively, with
    /// or without the `CAP_` prefix. Each such entry is reported at its node.
    ///
    /// Reported: `ALL`, `SYS_ADMIN`, `SYS_MODULE`, `SYS_RAWIO`, `SYS_PTRACE`, `SYS_BOOT`,
    /// `SYS_TIME`, `DAC_READ_SEARCH`, `NET_ADMIN`, `NET_RAW`, `BPF`, `PERFMON`, `SYSLOG`,
    /// `MAC_ADMIN`, `MAC_OVERRIDE`, `AUDIT_CONTROL`: each either reaches the node's kernel
    /// or host resources that are not namespaced (modules, raw I/O, clock, eBPF, audit,
    /// LSM policy), is a known escape or cross-process read (`SYS_ADMIN`,
    /// `DAC_READ_SEARCH`, `SYS_PTRACE`), or attacks the pod network (`NET_ADMIN`,
    /// `NET_RAW`). All of them are outside the Pod Security "baseline" allow-list.
    ///
    /// Not reported: the capabilities of the container runtime's default set that the Pod
    /// Security "baseline" profile allows (`CHOWN`, `DAC_OVERRIDE`, `FOWNER`, `FSETID`,
    /// `KILL`, `MKNOD`, `NET_BIND_SERVICE`, `SETFCAP`, `SETGID`, `SETPCAP`, `SETUID`,
    /// `SYS_CHROOT`, `AUDIT_WRITE`): adding them grants nothing a container without
    /// `drop: [ALL]` does not already have, and keeping them is RW507's concern. Nor
    /// `IPC_LOCK` and `SYS_NICE`, which GPU and RDMA workloads routinely need for pinned
    /// memory and NUMA placement and which stay within the container's cgroup.
    ///
    /// ## Why it matters (guide §5)
    /// Capabilities are slices of root. Any Ray job is arbitrary code, so whatever the Ray
    /// container may do, every job author (and anyone who reached an unauthenticated Jobs
    /// API) may do. KubeRay's own py-spy sample adds `SYS_PTRACE` so the dashboard can
    /// profile workers; that is a debugging setting, not one for a shared or exposed
    /// cluster.
    ///
    /// ## Example
    /// ```yaml
    /// containers:
    /// - name: ray-head
    ///   securityContext:
    ///     capabilities:
    ///       add: ["SYS_PTRACE"]
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// containers:
    /// - name: ray-head
    ///   securityContext:
    ///     capabilities:
    ///       drop: ["ALL"]
    /// ```
    /// For a short profiling session, add `SYS_PTRACE` to a dedicated debugging cluster and
    /// suppress the finding there: `rayward.io/ignore: "RW506 # py-spy profiling"`.
    pub struct DangerousCapabilities {
        id: "RW506",
        name: "dangerous-capabilities",
        severity: High,
        section: "5",
        summary: "Container adds a dangerous Linux capability",
        fix: "Remove the capability from `securityContext.capabilities.add`.",
        scope: Object,
        fixer: Some(&DangerousCapabilities),
        companion: None,
    }
}

impl Rule for DangerousCapabilities {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (t, c) in w.containers() {
            let Some(add) = c.node.path(&["securityContext", "capabilities", "add"]) else {
                continue;
            };
            let base = c.path.keys(&["securityContext", "capabilities", "add"]);
            for (i, cap) in add.as_seq().iter().enumerate() {
                let Some(raw) = cap.as_str() else { continue };
                let name = normalize_cap(raw);
                let Some((_, gives)) = DANGEROUS.iter().find(|(d, _)| *d == name) else {
                    continue;
                };
                out.report_fix(
                    w.obj,
                    base.idx(i),
                    cap.pos,
                    format!(
                        "{} adds capability `{}`: {gives}",
                        describe_container(t, &c),
                        raw.trim()
                    ),
                    format!("Remove `{}` from `capabilities.add`.", raw.trim()),
                );
            }
        }
    }
}

impl Fix for DangerousCapabilities {
    fn safe(&self) -> bool {
        true
    }

    /// Removes every added capability but `NET_BIND_SERVICE`, the one Pod Security
    /// `restricted` allows: the dangerous ones this rule names, and the rest, which the
    /// restricted profile refuses as well.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        for_each_container(obj, false, |t, c| {
            let Some(caps) = c
                .get_mut("securityContext")
                .and_then(|s| s.get_mut("capabilities"))
            else {
                return;
            };
            let at = t.path.keys(&["securityContext", "capabilities", "add"]);
            let Some(add) = caps.get_mut("add") else {
                return;
            };
            let mut removed = Vec::new();
            add.retain_items(|n| {
                let keep = n
                    .as_str()
                    .is_some_and(|s| normalize_cap(s) == "NET_BIND_SERVICE");
                if !keep {
                    removed.push(n.scalar_text().unwrap_or("").to_string());
                }
                keep
            });
            if removed.is_empty() {
                return;
            }
            if add.as_seq().is_empty() {
                caps.remove("add");
            }
            ch.add(
                &at,
                format!("remove added capabilities {}", removed.join(", ")),
            );
        });
        ch.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_names_are_normalized_forms() {
        for (name, _) in DANGEROUS {
            assert_eq!(normalize_cap(name), *name);
        }
    }

    #[test]
    fn runtime_defaults_are_not_listed() {
        for d in [
            "CHOWN",
            "SETUID",
            "SETGID",
            "DAC_OVERRIDE",
            "MKNOD",
            "IPC_LOCK",
        ] {
            assert!(DANGEROUS.iter().all(|(n, _)| *n != d), "{d}");
        }
    }
}
