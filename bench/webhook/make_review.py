#!/usr/bin/env python3
"""Builds the webhook benchmark's AdmissionReview from a KubeRay sample RayCluster.

    make_review.py SAMPLE.yaml > review.json

Takes the first RayCluster of SAMPLE (KubeRay's ray-cluster-label-selector.yaml has a head
and three workerGroupSpecs) and wraps it as kube-apiserver v1 sends a CREATE to a
validating webhook: namespace and uid filled in, userInfo, options. Needs PyYAML.
"""
import json
import sys

import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "RayCluster"]
obj = docs[0]
groups = obj["spec"].get("workerGroupSpecs", [])
if len(groups) != 3:
    sys.exit(f"{sys.argv[1]}: expected three workerGroupSpecs, found {len(groups)}")
ns = "team-a"
meta = obj.setdefault("metadata", {})
meta["namespace"] = ns
meta.setdefault("uid", "5b0b4a5e-6f43-4c8e-9f0e-1d2c3b4a5968")
meta.setdefault("creationTimestamp", "2026-11-27T04:00:00Z")
review = {
    "kind": "AdmissionReview",
    "apiVersion": "admission.k8s.io/v1",
    "request": {
        "uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
        "kind": {"group": "ray.io", "version": "v1", "kind": "RayCluster"},
        "resource": {"group": "ray.io", "version": "v1", "resource": "rayclusters"},
        "requestKind": {"group": "ray.io", "version": "v1", "kind": "RayCluster"},
        "requestResource": {"group": "ray.io", "version": "v1", "resource": "rayclusters"},
        "name": meta["name"],
        "namespace": ns,
        "operation": "CREATE",
        "userInfo": {"username": "alice", "uid": "1000", "groups": ["system:authenticated", "team-a"]},
        "object": obj,
        "oldObject": None,
        "dryRun": False,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
    },
}
json.dump(review, sys.stdout, separators=(",", ":"))
sys.stdout.write("\n")
