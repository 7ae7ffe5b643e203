#!/usr/bin/env python3
"""Generates the audit benchmark's corpus: hardened RayClusters with injected problems.

    gen.py --count 10000 --out bench/out/corpus --seed 1

writes
    DIR/namespaces.yaml           Namespace, ResourceQuota and NetworkPolicy for team-0..team-9
    DIR/clusters-NNN.yaml         --per-file RayClusters (ray.io/v1), each followed by its
                                  ServiceAccount, as multi-document YAML
    DIR/truth.jsonl               one line per injected problem:
                                  {"file","object","namespace","kind","rule_id","path"}
    DIR/corpus.json               count, seed, files and per-kind totals

Every cluster starts fully hardened (guide §1.1, §1.6, §2-§8: TLS env on every Ray
container, token auth, ClusterIP head service, dedicated ServiceAccount without a token,
restricted securityContext, requests and limits, image pinned by digest, namespace quota and
a NetworkPolicy admitting only Ray pods). Then a seeded RNG injects 0-3 problems of distinct
kinds (bench/audit/kinds.py) at random eligible places, and records each in truth.jsonl.

Standard library only; the YAML is written by a small emitter (checked with PyYAML by
`--check` when PyYAML is installed).
"""

import argparse
import json
import os
import random
import re
import string
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kinds import APPLY_ORDER, KINDS, KIND_ORDER  # noqa: E402

NAMESPACES = [f"team-{i}" for i in range(10)]
RAY_VERSION = "2.60.0"
TLS_ENV = [
    ("RAY_USE_TLS", "1"),
    ("RAY_TLS_SERVER_CERT", "/etc/ray/tls/tls.crt"),
    ("RAY_TLS_SERVER_KEY", "/etc/ray/tls/tls.key"),
    ("RAY_TLS_CA_CERT", "/etc/ray/tls/ca.crt"),
]
WORKER_SHAPES = [
    # name, cpu, memory, gpus, replicas
    ("cpu", "4", "16Gi", 0, 4),
    ("gpu", "8", "32Gi", 1, 2),
    ("highmem", "4", "64Gi", 0, 1),
]

# ---------------------------------------------------------------- YAML emitter

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./:@-]*$")
_RESERVED = {
    "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~",
}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED and not s.endswith(":"):
        return s
    return json.dumps(s)


def _emit(v, indent, out):
    pad = " " * indent
    if isinstance(v, dict):
        for k, x in v.items():
            key = _scalar(k)
            if isinstance(x, dict) and x:
                out.append(f"{pad}{key}:")
                _emit(x, indent + 2, out)
            elif isinstance(x, list) and x:
                out.append(f"{pad}{key}:")
                _emit(x, indent, out)
            elif isinstance(x, dict):
                out.append(f"{pad}{key}: {{}}")
            elif isinstance(x, list):
                out.append(f"{pad}{key}: []")
            else:
                out.append(f"{pad}{key}: {_scalar(x)}")
    elif isinstance(v, list):
        for x in v:
            if isinstance(x, dict) and x:
                sub = []
                _emit(x, indent + 2, sub)
                sub[0] = f"{pad}- " + sub[0][indent + 2:]
                out.extend(sub)
            elif isinstance(x, list) and x:
                raise ValueError("nested lists are not used")
            else:
                out.append(f"{pad}- {_scalar(x)}")
    else:
        raise ValueError(f"not a collection: {v!r}")


def to_yaml(doc):
    out = []
    _emit(doc, 0, out)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- base objects


def namespace_objects(ns):
    ray_sel = {"matchLabels": {"ray.io/is-ray-node": "yes"}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "ray-quota", "namespace": ns},
            "spec": {
                "hard": {
                    "requests.cpu": "2000",
                    "requests.memory": "8Ti",
                    "limits.cpu": "2000",
                    "limits.memory": "8Ti",
                    "requests.nvidia.com/gpu": "64",
                }
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "ray-nodes", "namespace": ns},
            "spec": {
                "podSelector": ray_sel,
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": ray_sel}]}],
            },
        },
    ]


def security_context():
    return {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def ray_container(name, image, cpu, memory, gpus, ports):
    limits = {"cpu": cpu, "memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = gpus
    c = {
        "name": name,
        "image": image,
        "env": [{"name": k, "value": v} for k, v in TLS_ENV],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": limits},
        "securityContext": security_context(),
        "volumeMounts": [{"name": "ray-tls", "mountPath": "/etc/ray/tls", "readOnly": True}],
    }
    if ports:
        c["ports"] = [{"name": n, "containerPort": p} for n, p in ports]
    return c


def pod_template(cluster, sa, container):
    return {
        "spec": {
            "serviceAccountName": sa,
            "automountServiceAccountToken": False,
            "containers": [container],
            "volumes": [{"name": "ray-tls", "secret": {"secretName": f"{cluster}-tls"}}],
        }
    }


def base_cluster(name, ns, image, shapes):
    sa = f"{name}-ray"
    head = ray_container(
        "ray-head", image, "2", "8Gi", 0,
        [("gcs", 6379), ("dashboard", 8265), ("client", 10001)],
    )
    workers = []
    for gname, cpu, mem, gpus, replicas in shapes:
        w = ray_container("ray-worker", image, cpu, mem, gpus, [])
        workers.append({
            "groupName": gname,
            "replicas": replicas,
            "minReplicas": 0,
            "maxReplicas": replicas,
            "rayStartParams": {},
            "template": pod_template(name, sa, w),
        })
    cluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "rayVersion": RAY_VERSION,
            "authOptions": {"mode": "token"},
            "headGroupSpec": {
                "serviceType": "ClusterIP",
                "rayStartParams": {},
                "template": pod_template(name, sa, head),
            },
            "workerGroupSpecs": workers,
        },
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": sa, "namespace": ns},
        "automountServiceAccountToken": False,
    }
    return cluster, account


# ---------------------------------------------------------------- injection


def templates(cluster, where):
    """(json path, template dict) of the eligible pod templates."""
    spec = cluster["spec"]
    out = []
    if where in ("any", "head"):
        out.append(("spec.headGroupSpec.template", spec["headGroupSpec"]["template"]))
    if where in ("any", "worker"):
        for i, g in enumerate(spec["workerGroupSpecs"]):
            out.append((f"spec.workerGroupSpecs[{i}].template", g["template"]))
    return out


def aws_key(rng):
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def inject(kind, cluster, rng):
    """Applies one problem of `kind` at a random eligible place; returns its JSON path."""
    spec = cluster["spec"]
    if kind == "head-lb":
        spec["headGroupSpec"]["serviceType"] = "LoadBalancer"
        return "spec.headGroupSpec.serviceType"
    tpath, tmpl = rng.choice(templates(cluster, KINDS[kind]["where"]))
    cpath = f"{tpath}.spec.containers[0]"
    c = tmpl["spec"]["containers"][0]
    sc = c["securityContext"]
    if kind == "privileged":
        sc["privileged"] = True
        return f"{cpath}.securityContext.privileged"
    if kind == "priv-escalation":
        sc["allowPrivilegeEscalation"] = True
        return f"{cpath}.securityContext.allowPrivilegeEscalation"
    if kind == "run-as-root":
        sc["runAsUser"] = 0
        return f"{cpath}.securityContext.runAsUser"
    if kind == "host-network":
        tmpl["spec"]["hostNetwork"] = True
        return f"{tpath}.spec.hostNetwork"
    if kind == "sys-admin":
        sc["capabilities"]["add"] = ["SYS_ADMIN"]
        return f"{cpath}.securityContext.capabilities.add[0]"
    if kind == "latest-image":
        c["image"] = "rayproject/ray:latest"
        return f"{cpath}.image"
    if kind == "no-limits":
        del c["resources"]["limits"]
        return f"{cpath}.resources"
    if kind == "aws-key":
        c["env"].append({"name": "AWS_ACCESS_KEY_ID", "value": aws_key(rng)})
        return f"{cpath}.env[{len(c['env']) - 1}]"
    if kind == "no-tls":
        c["env"] = [e for e in c["env"] if e["name"] != "RAY_USE_TLS"]
        return f"{cpath}.env"
    raise ValueError(kind)


# ---------------------------------------------------------------- main


def generate(count, out, seed, per_file, max_problems):
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".yaml") or f in ("truth.jsonl", "corpus.json"):
            os.remove(os.path.join(out, f))

    with open(os.path.join(out, "namespaces.yaml"), "w") as fh:
        docs = [d for ns in NAMESPACES for d in namespace_objects(ns)]
        fh.write("---\n".join(to_yaml(d) for d in docs))

    digest = "".join(rng.choice("0123456789abcdef") for _ in range(64))
    image = f"rayproject/ray:{RAY_VERSION}@sha256:{digest}"
    per_kind = {k: 0 for k in KIND_ORDER}
    per_count = [0] * (max_problems + 1)
    files = ["namespaces.yaml"]
    nfiles = (count + per_file - 1) // per_file
    width = max(3, len(str(nfiles - 1)))
    truth_fh = open(os.path.join(out, "truth.jsonl"), "w")
    for f in range(nfiles):
        fname = f"clusters-{f:0{width}d}.yaml"
        files.append(fname)
        docs = []
        for i in range(f * per_file, min(count, (f + 1) * per_file)):
            name = f"rc-{i:05d}"
            ns = NAMESPACES[i % len(NAMESPACES)]
            ngroups = rng.randint(1, 3)
            shapes = rng.sample(WORKER_SHAPES, ngroups)
            cluster, account = base_cluster(name, ns, image, shapes)
            k = rng.randint(0, max_problems)
            per_count[k] += 1
            kinds = rng.sample(KIND_ORDER, k)
            for kind in sorted(kinds, key=APPLY_ORDER.index):
                path = inject(kind, cluster, rng)
                per_kind[kind] += 1
                truth_fh.write(json.dumps({
                    "file": fname,
                    "object": name,
                    "namespace": ns,
                    "kind": kind,
                    "rule_id": KINDS[kind]["rules"][0],
                    "path": path,
                }) + "\n")
            docs.append(to_yaml(cluster))
            docs.append(to_yaml(account))
        with open(os.path.join(out, fname), "w") as fh:
            fh.write("---\n".join(docs))
    truth_fh.close()

    meta = {
        "count": count,
        "seed": seed,
        "per_file": per_file,
        "namespaces": NAMESPACES,
        "files": files,
        "clusters_by_problem_count": per_count,
        "injected_by_kind": per_kind,
        "injected_total": sum(per_kind.values()),
    }
    with open(os.path.join(out, "corpus.json"), "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    return meta


def check(out):
    """Parses every file with PyYAML and re-checks each truth path resolves."""
    import yaml

    objs = {}
    for f in sorted(os.listdir(out)):
        if f.endswith(".yaml"):
            with open(os.path.join(out, f)) as fh:
                for d in yaml.load_all(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
                    md = d["metadata"]
                    objs[(d["kind"], md.get("namespace"), md["name"])] = (f, d)
    n = 0
    with open(os.path.join(out, "truth.jsonl")) as fh:
        for line in fh:
            t = json.loads(line)
            f, d = objs[("RayCluster", t["namespace"], t["object"])]
            assert f == t["file"], t
            node = d
            for part in re.findall(r"[^.\[\]]+|\[\d+\]", t["path"]):
                node = node[int(part[1:-1])] if part.startswith("[") else node[part]
            n += 1
    print(f"check: {len(objs)} objects parsed, {n} truth paths resolve", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-file", type=int, default=100)
    ap.add_argument("--max-problems", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="re-parse the output with PyYAML")
    a = ap.parse_args()
    meta = generate(a.count, a.out, a.seed, a.per_file, a.max_problems)
    print(
        f"gen: {a.count} RayClusters in {len(meta['files'])} files, "
        f"{meta['injected_total']} injected problems -> {a.out}",
        file=sys.stderr,
    )
    if a.check:
        check(a.out)


if __name__ == "__main__":
    main()
