"""Writes the hostile inputs of bench/hostile/run.sh into the folder given: each at most 1 MB."""
import os
import sys

out = sys.argv[1]
HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"


def nested_anchors(levels, width, alias):
    s = HEAD + "spec:\n  top: "
    for l in range(levels):
        s += "&a%d {" % l + "".join("k%d: %d, " % (k, k) for k in range(width)) + "next: "
    s += "x" + "}" * levels + "\n"
    if alias:
        s += "  copy: *a0\n"
    return s


def merges(n, alias):
    s = HEAD + "base: &b {x: 1}\nspec:\n"
    for i in range(n):
        s += "  <<: *b\n" if alias else "  <<: {k%d: 1}\n" % i
    return s


def bomb():
    s = HEAD + "spec:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 12):
        s += "  a%d: &a%d [%s]\n" % (i, i, ", ".join(["*a%d" % (i - 1)] * 10))
    return s


def in_runtime_env(inner):
    s = ("apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: j, namespace: t}\nspec:\n"
         "  entrypoint: python x.py\n  runtimeEnvYAML: |\n")
    return s + "".join("    " + l + "\n" for l in inner.splitlines())


def clusters(n):
    one = ("apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: c%d, namespace: t}\nspec:\n"
           "  headGroupSpec:\n    template:\n      spec:\n        containers:\n"
           "        - name: ray-head\n          image: rayproject/ray:2.40.0\n"
           "          securityContext: {privileged: yes}\n")
    return "---\n".join(one % i for i in range(n))


def wide(n):
    return HEAD + "data:\n" + "".join("  k%d: v\n" % i for i in range(n))


def worker_groups(n):
    s = ("apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: a, namespace: t}\nspec:\n"
         "  rayVersion: \"2.60.0\"\n  headGroupSpec:\n    template:\n      spec:\n"
         "        containers: [{name: ray-head, image: rayproject/ray:2.60.0}]\n  workerGroupSpecs:\n")
    for i in range(n):
        s += ("  - groupName: g%d\n    replicas: 1\n    template:\n      spec:\n"
              "        containers: [{name: ray-worker, image: rayproject/ray:2.60.0}]\n" % i)
    return s


def deep_block(n):
    return HEAD + "spec:\n" + "".join("  " * (i + 1) + "k:\n" for i in range(n))


cases = {
    "nested-anchors": nested_anchors(100, 900, False),
    "nested-anchors-alias": nested_anchors(100, 900, True),
    "merge-keys-40k": merges(40000, False),
    "merge-keys-40k-alias": merges(40000, True),
    "alias-bomb": bomb(),
    "runtime-env-anchors": in_runtime_env(nested_anchors(60, 900, False)),
    "clusters-3000": clusters(3000),
    "wide-map-80k": wide(80000),
    "deep-block-127": deep_block(127),
    "worker-groups-3000": worker_groups(3000),
}
for name, text in cases.items():
    data = text.encode()
    assert len(data) <= 1 << 20, (name, len(data))
    with open(os.path.join(out, name + ".yaml"), "wb") as f:
        f.write(data)
