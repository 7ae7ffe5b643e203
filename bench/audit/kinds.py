"""The problem kinds the audit benchmark injects, shared by gen.py and score.py.

Each kind names the rayward rule(s) that must report it, where it may be injected, and
the Checkov checks that look at the same thing (Checkov reads no JSON paths for custom
resources, so for Checkov only the object counts; see score.py).
"""

# kind -> description
#   rules:    rayward rule ids that count as finding it (the first is the one in truth.jsonl)
#   scope:    "container" (containers[0] of a pod template), "pod" (a pod template's spec),
#             "cluster" (the RayCluster spec)
#   where:    "any" (head or a worker group), "worker" (worker groups only), "head"
#   checkov:  Checkov check ids that report the same problem (verified against
#             `checkov --list --framework kubernetes`, Checkov 3.x)
KINDS = {
    "privileged": {
        "rules": ["RW501"],
        "scope": "container",
        "where": "any",
        "checkov": ["CKV_K8S_16"],  # Container should not be privileged
    },
    "priv-escalation": {
        "rules": ["RW502"],
        "scope": "container",
        "where": "any",
        "checkov": ["CKV_K8S_20"],  # Containers should not run with allowPrivilegeEscalation
    },
    "run-as-root": {
        "rules": ["RW503"],
        "scope": "container",
        "where": "any",
        # CKV_K8S_23: Minimize the admission of root containers
        # CKV_K8S_40: Containers should run as a high UID to avoid host conflict
        "checkov": ["CKV_K8S_23", "CKV_K8S_40"],
    },
    "host-network": {
        "rules": ["RW504"],
        "scope": "pod",
        "where": "any",
        "checkov": ["CKV_K8S_19"],  # Containers should not share the host network namespace
    },
    "sys-admin": {
        "rules": ["RW506"],
        "scope": "container",
        "where": "any",
        "checkov": ["CKV_K8S_39"],  # Do not use the CAP_SYS_ADMIN linux capability
    },
    "latest-image": {
        "rules": ["RW601"],
        "scope": "container",
        "where": "worker",
        "checkov": ["CKV_K8S_14"],  # Image Tag should be fixed - not latest or blank
    },
    "no-limits": {
        "rules": ["RW701"],
        "scope": "container",
        "where": "any",
        # CKV_K8S_11: CPU limits should be set; CKV_K8S_13: Memory limits should be set
        "checkov": ["CKV_K8S_11", "CKV_K8S_13"],
    },
    "aws-key": {
        "rules": ["RW801"],
        "scope": "container",
        "where": "any",
        # CKV_SECRET_2 (AWS Access Key) comes from Checkov's secrets framework, which the
        # benchmark also runs; CKV_K8S_35 prefers secrets as files over env (it fires on
        # any secretKeyRef, not on literal values, so it is not mapped).
        "checkov": ["CKV_SECRET_2"],
    },
    "head-lb": {
        "rules": ["RW110"],
        "scope": "cluster",
        "where": "head",
        "checkov": [],  # Checkov has no check on Service type for custom resources
    },
    "no-tls": {
        "rules": ["RW102", "RW101"],
        "scope": "container",
        "where": "worker",
        "checkov": [],  # no Checkov check about Ray's TLS
    },
}

KIND_ORDER = list(KINDS)

# The order injections are applied in: no-tls removes an env entry, aws-key appends one;
# removing first keeps the recorded env index right when both hit the same container.
APPLY_ORDER = [
    "no-tls",
    "aws-key",
    "privileged",
    "priv-escalation",
    "run-as-root",
    "host-network",
    "sys-admin",
    "latest-image",
    "no-limits",
    "head-lb",
]
assert sorted(APPLY_ORDER) == sorted(KINDS)

RULE_TO_KINDS = {}
for _k, _d in KINDS.items():
    for _r in _d["rules"]:
        RULE_TO_KINDS.setdefault(_r, []).append(_k)
