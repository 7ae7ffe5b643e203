//! The Pod Security Standards `restricted` profile, control by control, as published at
//! <https://kubernetes.io/docs/concepts/security/pod-security-standards/> (baseline
//! controls included, since restricted is cumulative). Written from the list, not from
//! rayward's rules: tests hold rayward's output to what Pod Security Admission would
//! enforce, independently of the rules that produced it.
//!
//! "containers" means `containers`, `initContainers` and `ephemeralContainers`.

use serde_json::Value;

/// Capabilities baseline allows a container to add.
const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Sysctls baseline allows.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// SELinux types baseline allows (besides unset or empty).
const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Volume types restricted allows.
const VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn containers(spec: &Value) -> impl Iterator<Item = (String, &Value)> {
    ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| {
            spec[k]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(move |(i, c)| (format!("{k}[{i}]"), c))
        })
}

fn is_true(v: &Value) -> bool {
    v.as_bool() == Some(true)
}

/// Every violation of `restricted` by a pod template (`metadata` + `spec`, or a Pod), as
/// `control: field`. Empty: Pod Security Admission admits it in a restricted namespace.
pub fn restricted_violations(template: &Value) -> Vec<String> {
    let spec = &template["spec"];
    let annotations = &template["metadata"]["annotations"];
    let psc = &spec["securityContext"];
    let mut v = Vec::new();
    let mut bad = |control: &str, field: String| v.push(format!("{control}: {field}"));

    // --- baseline ---
    if is_true(&psc["windowsOptions"]["hostProcess"]) {
        bad(
            "HostProcess",
            "spec.securityContext.windowsOptions.hostProcess".into(),
        );
    }
    for ns in ["hostNetwork", "hostPID", "hostIPC"] {
        if is_true(&spec[ns]) {
            bad("Host Namespaces", format!("spec.{ns}"));
        }
    }
    for vol in spec["volumes"].as_array().into_iter().flatten() {
        let name = vol["name"].as_str().unwrap_or("?");
        if vol.get("hostPath").is_some() {
            bad("HostPath Volumes", format!("spec.volumes[{name}].hostPath"));
        }
        let types: Vec<&str> = vol
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .filter(|k| *k != "name")
            .collect();
        for t in types {
            if !VOLUME_TYPES.contains(&t) {
                bad("Volume Types", format!("spec.volumes[{name}].{t}"));
            }
        }
    }
    let apparmor = |t: &Value| t.is_null() || t == "RuntimeDefault" || t == "Localhost";
    if !apparmor(&psc["appArmorProfile"]["type"]) {
        bad(
            "AppArmor",
            "spec.securityContext.appArmorProfile.type".into(),
        );
    }
    for (k, val) in annotations.as_object().into_iter().flatten() {
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") {
            let s = val.as_str().unwrap_or("");
            if s != "runtime/default" && !s.starts_with("localhost/") {
                bad("AppArmor", format!("metadata.annotations[{k}]"));
            }
        }
    }
    let selinux = |o: &Value, at: &str, bad: &mut dyn FnMut(&str, String)| {
        let t = o["type"].as_str().unwrap_or("");
        if !t.is_empty() && !SELINUX_TYPES.contains(&t) {
            bad("SELinux", format!("{at}.seLinuxOptions.type"));
        }
        for f in ["user", "role"] {
            if !o[f].as_str().unwrap_or("").is_empty() {
                bad("SELinux", format!("{at}.seLinuxOptions.{f}"));
            }
        }
    };
    selinux(&psc["seLinuxOptions"], "spec.securityContext", &mut bad);
    for s in psc["sysctls"].as_array().into_iter().flatten() {
        let n = s["name"].as_str().unwrap_or("");
        if !SAFE_SYSCTLS.contains(&n) {
            bad("Sysctls", format!("spec.securityContext.sysctls[{n}]"));
        }
    }

    // --- restricted, pod level ---
    let pod_non_root = is_true(&psc["runAsNonRoot"]);
    if psc["runAsUser"].as_i64() == Some(0) {
        bad(
            "Running as Non-root user",
            "spec.securityContext.runAsUser".into(),
        );
    }
    let seccomp_ok = |t: &Value| t == "RuntimeDefault" || t == "Localhost";
    let pod_seccomp = &psc["seccompProfile"]["type"];
    if !pod_seccomp.is_null() && !seccomp_ok(pod_seccomp) {
        bad("Seccomp", "spec.securityContext.seccompProfile.type".into());
    }

    for (at, c) in containers(spec) {
        let at = format!("spec.{at}");
        let sc = &c["securityContext"];
        if is_true(&sc["windowsOptions"]["hostProcess"]) {
            bad(
                "HostProcess",
                format!("{at}.securityContext.windowsOptions.hostProcess"),
            );
        }
        if is_true(&sc["privileged"]) {
            bad(
                "Privileged Containers",
                format!("{at}.securityContext.privileged"),
            );
        }
        for cap in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            let cap = cap.as_str().unwrap_or("");
            if !BASELINE_CAPS.contains(&cap) {
                bad(
                    "Capabilities (baseline)",
                    format!("{at}.securityContext.capabilities.add[{cap}]"),
                );
            } else if cap != "NET_BIND_SERVICE" {
                bad(
                    "Capabilities",
                    format!("{at}.securityContext.capabilities.add[{cap}]"),
                );
            }
        }
        let drops_all = sc["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            bad(
                "Capabilities",
                format!("{at}.securityContext.capabilities.drop (must hold ALL)"),
            );
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            if p["hostPort"].as_i64().unwrap_or(0) != 0 {
                bad("Host Ports", format!("{at}.ports[].hostPort"));
            }
        }
        if !apparmor(&sc["appArmorProfile"]["type"]) {
            bad(
                "AppArmor",
                format!("{at}.securityContext.appArmorProfile.type"),
            );
        }
        selinux(
            &sc["seLinuxOptions"],
            &format!("{at}.securityContext"),
            &mut bad,
        );
        let pm = &sc["procMount"];
        if !pm.is_null() && pm != "Default" {
            bad(
                "/proc Mount Type",
                format!("{at}.securityContext.procMount"),
            );
        }
        if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
            bad(
                "Privilege Escalation",
                format!("{at}.securityContext.allowPrivilegeEscalation (must be false)"),
            );
        }
        match sc["runAsNonRoot"].as_bool() {
            Some(false) => bad(
                "Running as Non-root",
                format!("{at}.securityContext.runAsNonRoot"),
            ),
            None if !pod_non_root => bad(
                "Running as Non-root",
                format!("{at}.securityContext.runAsNonRoot (unset here and on the pod)"),
            ),
            _ => {}
        }
        if sc["runAsUser"].as_i64() == Some(0) {
            bad(
                "Running as Non-root user",
                format!("{at}.securityContext.runAsUser"),
            );
        }
        let t = &sc["seccompProfile"]["type"];
        if t.is_null() {
            if pod_seccomp.is_null() {
                bad(
                    "Seccomp",
                    format!("{at}.securityContext.seccompProfile (unset here and on the pod)"),
                );
            }
        } else if !seccomp_ok(t) {
            bad(
                "Seccomp",
                format!("{at}.securityContext.seccompProfile.type"),
            );
        }
    }
    v
}

/// The pod templates of a Kubernetes object, with where they sit: a Pod itself, the
/// workload kinds' `spec.template`, a CronJob's `spec.jobTemplate.spec.template`, and the
/// Ray kinds' head and worker groups.
pub fn pod_templates(obj: &Value) -> Vec<(String, &Value)> {
    let spec = &obj["spec"];
    let mut out = Vec::new();
    match obj["kind"].as_str().unwrap_or("") {
        "Pod" => out.push((String::new(), obj)),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => out.push(("spec.template".into(), &spec["template"])),
        "CronJob" => out.push((
            "spec.jobTemplate.spec.template".into(),
            &spec["jobTemplate"]["spec"]["template"],
        )),
        "RayCluster" => ray_cluster(spec, "spec", &mut out),
        "RayJob" => {
            ray_cluster(&spec["rayClusterSpec"], "spec.rayClusterSpec", &mut out);
            if spec["submitterPodTemplate"].is_object() {
                out.push((
                    "spec.submitterPodTemplate".into(),
                    &spec["submitterPodTemplate"],
                ));
            }
        }
        "RayService" => ray_cluster(&spec["rayClusterConfig"], "spec.rayClusterConfig", &mut out),
        _ => {}
    }
    out.retain(|(_, t)| t.is_object());
    out
}

fn ray_cluster<'a>(spec: &'a Value, at: &str, out: &mut Vec<(String, &'a Value)>) {
    out.push((
        format!("{at}.headGroupSpec.template"),
        &spec["headGroupSpec"]["template"],
    ));
    for (i, g) in spec["workerGroupSpecs"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.push((
            format!("{at}.workerGroupSpecs[{i}].template"),
            &g["template"],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compliant() -> Value {
        json!({
            "metadata": {},
            "spec": {
                "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "c",
                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                }],
                "volumes": [{"name": "s", "secret": {"secretName": "x"}}],
            },
        })
    }

    #[test]
    fn a_minimal_restricted_pod_passes() {
        assert_eq!(restricted_violations(&compliant()), Vec::<String>::new());
    }

    /// Each control, broken once on the compliant pod, is reported under its name.
    #[test]
    fn every_control_is_checked() {
        let cases: &[(&str, &str, Value)] = &[
            ("Host Namespaces", "/spec/hostNetwork", json!(true)),
            ("Host Namespaces", "/spec/hostPID", json!(true)),
            (
                "HostProcess",
                "/spec/securityContext/windowsOptions",
                json!({"hostProcess": true}),
            ),
            (
                "HostPath Volumes",
                "/spec/volumes/0",
                json!({"name": "h", "hostPath": {"path": "/"}}),
            ),
            (
                "Volume Types",
                "/spec/volumes/0",
                json!({"name": "g", "gitRepo": {"repository": "x"}}),
            ),
            (
                "Privileged Containers",
                "/spec/containers/0/securityContext/privileged",
                json!(true),
            ),
            (
                "Capabilities",
                "/spec/containers/0/securityContext/capabilities",
                json!({"drop": ["NET_RAW"]}),
            ),
            (
                "Capabilities",
                "/spec/containers/0/securityContext/capabilities",
                json!({"drop": ["ALL"], "add": ["CHOWN"]}),
            ),
            (
                "Capabilities (baseline)",
                "/spec/containers/0/securityContext/capabilities",
                json!({"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
            ),
            (
                "Host Ports",
                "/spec/containers/0/ports",
                json!([{"containerPort": 80, "hostPort": 80}]),
            ),
            (
                "AppArmor",
                "/spec/securityContext/appArmorProfile",
                json!({"type": "Unconfined"}),
            ),
            (
                "AppArmor",
                "/metadata/annotations",
                json!({"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}),
            ),
            (
                "SELinux",
                "/spec/securityContext/seLinuxOptions",
                json!({"type": "spc_t"}),
            ),
            (
                "SELinux",
                "/spec/containers/0/securityContext/seLinuxOptions",
                json!({"user": "root"}),
            ),
            (
                "/proc Mount Type",
                "/spec/containers/0/securityContext/procMount",
                json!("Unmasked"),
            ),
            (
                "Sysctls",
                "/spec/securityContext/sysctls",
                json!([{"name": "kernel.msgmax", "value": "1"}]),
            ),
            (
                "Privilege Escalation",
                "/spec/containers/0/securityContext/allowPrivilegeEscalation",
                json!(true),
            ),
            (
                "Running as Non-root",
                "/spec/securityContext/runAsNonRoot",
                json!(false),
            ),
            (
                "Running as Non-root",
                "/spec/containers/0/securityContext/runAsNonRoot",
                json!(false),
            ),
            (
                "Running as Non-root user",
                "/spec/containers/0/securityContext/runAsUser",
                json!(0),
            ),
            (
                "Seccomp",
                "/spec/securityContext/seccompProfile",
                json!({"type": "Unconfined"}),
            ),
            (
                "Seccomp",
                "/spec/securityContext/seccompProfile",
                Value::Null,
            ),
        ];
        for (control, ptr, value) in cases {
            let mut pod = compliant();
            let (parent, key) = ptr.rsplit_once('/').unwrap();
            let p = pod
                .pointer_mut(parent)
                .unwrap_or_else(|| panic!("{parent}"));
            match p {
                Value::Array(a) => a[key.parse::<usize>().unwrap()] = value.clone(),
                Value::Object(m) if value.is_null() => {
                    m.remove(key);
                }
                Value::Object(m) => {
                    m.insert(key.to_string(), value.clone());
                }
                _ => panic!("{ptr}"),
            }
            let v = restricted_violations(&pod);
            assert!(
                v.iter().any(|x| x.starts_with(&format!("{control}:"))),
                "{ptr} = {value}: want {control}, got {v:?}"
            );
        }
    }

    #[test]
    fn init_and_ephemeral_containers_count() {
        let mut pod = compliant();
        pod["spec"]["initContainers"] = json!([{"name": "i"}]);
        let v = restricted_violations(&pod);
        assert!(
            v.iter()
                .any(|x| x.contains("initContainers[0]") && x.starts_with("Privilege Escalation")),
            "{v:?}"
        );
    }

    #[test]
    fn templates_of_every_kind_are_found() {
        let t = json!({"spec": {}});
        let d = json!({"kind": "Deployment", "spec": {"template": t}});
        assert_eq!(pod_templates(&d)[0].0, "spec.template");
        let c = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": t}}}});
        assert_eq!(pod_templates(&c).len(), 1);
        let r = json!({"kind": "RayCluster", "spec": {"headGroupSpec": {"template": t},
            "workerGroupSpecs": [{"template": t}, {"template": t}]}});
        assert_eq!(pod_templates(&r).len(), 3);
        assert!(pod_templates(&json!({"kind": "Service"})).is_empty());
    }
}
