//! Harden on small hand-written objects: the shape of each fix and companion, the safe
//! preset, and what is reported instead of guessed.

use rayward_harden::{harden_bundle, harden_object, Options, Source};
use rayward_manifest::emit::to_yaml;
use rayward_manifest::{load_bytes, Kind, Limits, Node, Object};

fn load(text: &str) -> Vec<Object> {
    let l = load_bytes("in.yaml", text.as_bytes(), &Limits::default());
    assert!(l.error.is_none(), "{:?}", l.error);
    l.objects
}

const CLUSTER: &str = "\
apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: demo
  namespace: team-a
spec:
  rayVersion: '2.60.0'
  enableInTreeAutoscaling: true
  headGroupSpec:
    serviceType: NodePort
    headService:
      spec:
        type: LoadBalancer
        externalTrafficPolicy: Local
        ports:
        - {name: dashboard, port: 8265, nodePort: 30265}
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.60.0
          env:
          - {name: RAY_AUTH_TOKEN, value: s3cr3t-token-value}
          securityContext:
            privileged: true
            runAsUser: 0
            capabilities: {add: [SYS_ADMIN, NET_BIND_SERVICE]}
  workerGroupSpecs:
  - groupName: gpu
    replicas: 1
    maxReplicas: 3
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.60.0
          resources:
            requests: {cpu: '2', memory: 4Gi}
            limits: {nvidia.com/gpu: 1}
";

fn hardened() -> rayward_harden::Hardened {
    harden_object(&load(CLUSTER)[0], &Options::default())
}

fn at<'a>(root: &'a Node, path: &[&str]) -> &'a Node {
    root.path(path)
        .unwrap_or_else(|| panic!("{path:?} missing in\n{}", to_yaml(root)))
}

#[test]
fn tls_keeps_the_ca_key_in_the_init_container() {
    let h = hardened();
    let spec = at(
        &h.object.root,
        &["spec", "headGroupSpec", "template", "spec"],
    );
    let init = &at(spec, &["initContainers"]).as_seq()[0];
    assert_eq!(
        init.get("name").and_then(Node::as_str),
        Some("rayward-certs")
    );
    let cmd: Vec<&str> = at(init, &["command"])
        .as_seq()
        .iter()
        .filter_map(Node::as_str)
        .collect();
    assert_eq!(
        cmd,
        [
            "rayward",
            "certs",
            "node",
            "--ca",
            "/etc/ray/ca",
            "--out",
            "/etc/ray/tls",
            "--force"
        ]
    );
    let mounts = |c: &Node| -> Vec<String> {
        c.get("volumeMounts")
            .map(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|m| m.get("name").and_then(Node::as_str).map(str::to_string))
            .collect()
    };
    assert_eq!(mounts(init), ["rayward-ca", "rayward-tls"]);
    let ray = &at(spec, &["containers"]).as_seq()[0];
    assert_eq!(
        mounts(ray),
        ["rayward-tls"],
        "the Ray container never sees the CA key"
    );
    let secret = at(spec, &["volumes"])
        .as_seq()
        .iter()
        .find(|v| v.get("name").and_then(Node::as_str) == Some("rayward-ca"))
        .unwrap();
    assert_eq!(
        secret
            .path(&["secret", "secretName"])
            .and_then(Node::as_str),
        Some("rayward-ray-ca")
    );
    let env = |c: &Node, k: &str| {
        c.get("env")?
            .as_seq()
            .iter()
            .find(|e| e.get("name").and_then(Node::as_str) == Some(k))?
            .get("value")?
            .as_str()
            .map(str::to_string)
    };
    for c in [ray, at(&h.object.root, &["spec", "autoscalerOptions"])] {
        assert_eq!(env(c, "RAY_USE_TLS").as_deref(), Some("1"));
        assert_eq!(
            env(c, "RAY_TLS_CA_CERT").as_deref(),
            Some("/etc/ray/tls/ca.crt")
        );
    }
    // "1" must stay a string in YAML.
    assert!(to_yaml(&h.object.root).contains("value: \"1\""));
}

#[test]
fn services_become_cluster_ip_without_external_fields() {
    let h = hardened();
    let head = at(&h.object.root, &["spec", "headGroupSpec"]);
    assert_eq!(
        head.get("serviceType").and_then(Node::as_str),
        Some("ClusterIP")
    );
    let svc = at(head, &["headService", "spec"]);
    assert_eq!(svc.get("type").and_then(Node::as_str), Some("ClusterIP"));
    assert!(svc.get("externalTrafficPolicy").is_none());
    assert!(svc.get("ports").unwrap().as_seq()[0]
        .get("nodePort")
        .is_none());
}

#[test]
fn pod_security_is_restricted() {
    let h = hardened();
    let spec = at(
        &h.object.root,
        &["spec", "headGroupSpec", "template", "spec"],
    );
    let sc = at(spec, &["containers"]).as_seq()[0]
        .get("securityContext")
        .unwrap();
    assert_eq!(sc.get("privileged").and_then(Node::as_bool), Some(false));
    assert_eq!(sc.get("runAsUser").and_then(Node::as_i64), Some(1000));
    assert_eq!(
        sc.get("allowPrivilegeEscalation").and_then(Node::as_bool),
        Some(false)
    );
    let add: Vec<&str> = at(sc, &["capabilities", "add"])
        .as_seq()
        .iter()
        .filter_map(Node::as_str)
        .collect();
    assert_eq!(
        add,
        ["NET_BIND_SERVICE"],
        "only the capability restricted PSA allows stays"
    );
    let pod = at(spec, &["securityContext"]);
    assert_eq!(pod.get("runAsNonRoot").and_then(Node::as_bool), Some(true));
    assert_eq!(
        pod.path(&["seccompProfile", "type"]).and_then(Node::as_str),
        Some("RuntimeDefault")
    );
}

#[test]
fn token_auth_and_accounts() {
    let h = hardened();
    assert_eq!(
        h.object
            .root
            .path(&["spec", "authOptions", "mode"])
            .and_then(Node::as_str),
        Some("token")
    );
    let head = at(
        &h.object.root,
        &["spec", "headGroupSpec", "template", "spec"],
    );
    let worker = &at(&h.object.root, &["spec", "workerGroupSpecs"]).as_seq()[0];
    let worker = at(worker, &["template", "spec"]);
    for s in [head, worker] {
        assert_eq!(
            s.get("serviceAccountName").and_then(Node::as_str),
            Some("demo-ray")
        );
    }
    // The autoscaler in the head needs the API; workers do not.
    assert_eq!(
        head.get("automountServiceAccountToken")
            .and_then(Node::as_bool),
        Some(true)
    );
    assert_eq!(
        worker
            .get("automountServiceAccountToken")
            .and_then(Node::as_bool),
        Some(false)
    );
    let kinds: Vec<&str> = h.companions.iter().map(|c| c.kind_name.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "NetworkPolicy",
            "NetworkPolicy"
        ]
    );
    let role = &h.companions[1];
    let text = to_yaml(&role.root);
    assert!(
        text.contains("- pods") && text.contains("- rayclusters"),
        "{text}"
    );
    assert!(!text.contains("delete") && !text.contains("'*'"), "{text}");
}

#[test]
fn network_policies_use_kuberay_labels_and_allowed_sources() {
    let opts = Options {
        dashboard_from: vec![Source::parse("10.1.0.0/16").unwrap()],
        gateway: true,
        ..Options::default()
    };
    let h = harden_object(&load(CLUSTER)[0], &opts);
    let np: Vec<&Object> = h
        .companions
        .iter()
        .filter(|c| c.kind == Kind::NetworkPolicy)
        .collect();
    let head = to_yaml(&np[0].root);
    assert!(
        head.contains("ray.io/cluster: demo") && head.contains("ray.io/node-type: head"),
        "{head}"
    );
    assert!(!head.contains("app: ray-cluster-head"));
    assert!(
        head.contains("cidr: 10.1.0.0/16")
            && head.contains("app.kubernetes.io/name: rayward-gateway")
    );
    assert!(head.contains("port: 8265") && head.contains("port: 10001"));
    assert!(
        !head.contains("52365"),
        "the agent port is never opened to outside sources"
    );
    // The autoscaler's head reaches the API server.
    assert!(head.contains("port: 6443"));
    let worker = to_yaml(&np[1].root);
    assert!(
        !worker.contains("6443") && !worker.contains("10.1.0.0"),
        "{worker}"
    );
    // The rules find every Ray pod covered and no open Ray port.
    assert!(h
        .unfixed
        .iter()
        .all(|f| !["RW140", "RW142"].contains(&f.rule_id)));
}

#[test]
fn what_cannot_be_fixed_is_reported_at_its_line() {
    let h = hardened();
    let literal = h
        .unfixed
        .iter()
        .find(|f| f.rule_id == "RW116")
        .expect("a literal token is reported, not guessed away");
    assert_eq!((&*literal.file, literal.line), ("in.yaml", 24));
    // And it is still there: harden does not invent a Secret.
    assert!(to_yaml(&h.object.root).contains("s3cr3t-token-value"));
}

#[test]
fn safe_only_changes_only_what_needs_no_choice() {
    let h = harden_object(&load(CLUSTER)[0], &Options::safe_only());
    assert!(h.companions.is_empty());
    let ids: std::collections::BTreeSet<&str> = h.changes.iter().map(|c| c.rule_id).collect();
    for done in [
        "RW110", "RW114", "RW501", "RW502", "RW503", "RW506", "RW507", "RW508", "RW402",
    ] {
        assert!(ids.contains(done), "{done} missing from {ids:?}");
    }
    for not in ["RW101", "RW401", "RW701", "RW201"] {
        assert!(!ids.contains(not), "{not} is not a safe fix");
    }
    let text = to_yaml(&h.object.root);
    assert!(!text.contains("rayward-certs") && !text.contains("demo-ray"));
}

#[test]
fn quota_is_sized_from_maximum_replicas() {
    let b = harden_bundle(&load(CLUSTER), &Options::default());
    let q = b
        .companions
        .iter()
        .find(|c| c.kind == Kind::ResourceQuota)
        .expect("a quota for team-a");
    let hard = q.root.path(&["spec", "hard"]).unwrap();
    let get = |k: &str| hard.get(k).and_then(Node::as_str).unwrap_or("").to_string();
    // head 1 (default) + 3 workers x 2 + autoscaler 500m.
    assert_eq!(get("requests.cpu"), "7500m");
    // head 2Gi + 3 x 4Gi + 512Mi.
    assert_eq!(get("limits.memory"), "14848Mi");
    assert_eq!(get("requests.nvidia.com/gpu"), "3");
    assert_eq!(q.namespace.as_deref(), Some("team-a"));
}

#[test]
fn rayjob_policies_let_the_submitter_and_operator_reach_the_dashboard() {
    let job = "\
apiVersion: ray.io/v1
kind: RayJob
metadata: {name: train}
spec:
  entrypoint: python train.py
  rayClusterSpec:
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers: [{name: head, image: 'rayproject/ray:2.60.0'}]
";
    let h = harden_object(&load(job)[0], &Options::default());
    let spec = h.object.root.get("spec").unwrap();
    assert_eq!(
        spec.get("submissionMode").and_then(Node::as_str),
        Some("K8sJobMode")
    );
    assert_eq!(
        spec.get("shutdownAfterJobFinishes").and_then(Node::as_bool),
        Some(true)
    );
    let head = to_yaml(
        &h.companions
            .iter()
            .find(|c| c.name == "train-ray-head")
            .unwrap()
            .root,
    );
    assert!(
        head.contains("ray.io/originated-from-cr-name: train"),
        "{head}"
    );
    assert!(head.contains("job-name: train"), "{head}");
    assert!(
        head.contains("app.kubernetes.io/name: kuberay-operator"),
        "{head}"
    );
}

#[test]
fn non_ray_objects_pass_through() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1'}\n";
    let h = harden_object(&load(text)[0], &Options::default());
    assert!(h.changes.is_empty() && h.companions.is_empty());
    assert_eq!(
        to_yaml(&h.object.root),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: '1'\n"
            .replace("'1'", "\"1\"")
    );
}

#[test]
fn harden_node_serves_json_objects() {
    // What the webhook has: an object decoded from an AdmissionReview's JSON.
    let json = br#"{"apiVersion":"ray.io/v1","kind":"RayCluster","metadata":{"name":"j"},"spec":{"headGroupSpec":{"serviceType":"LoadBalancer","rayStartParams":{},"template":{"spec":{"containers":[{"name":"h","image":"rayproject/ray:2.60.0"}]}}}}}"#;
    let root = load_bytes("request.json", json, &Limits::default())
        .objects
        .remove(0)
        .root;
    let h = rayward_harden::harden_node(root, "request.json", &Options::safe_only()).unwrap();
    let out = rayward_manifest::emit::to_json(&h.object.root);
    assert!(out.contains(r#""serviceType":"ClusterIP""#), "{out}");
    assert!(out.contains(r#""runAsNonRoot":true"#), "{out}");
    assert!(out.contains(r#""runAsUser":1000"#), "{out}");
    assert!(h
        .changes
        .iter()
        .any(|c| c.rule_id == "RW110" && c.json_path == "spec.headGroupSpec.serviceType"));
    assert!(rayward_harden::harden_node(Node::new_map(), "x", &Options::default()).is_none());
}
