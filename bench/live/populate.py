#!/usr/bin/env python3
"""Stores N insecure RayClusters and one Service each in a kube-apiserver (bench/live/run.sh).

usage: populate.py URL TOKEN N NAMESPACE
The Services are headless (clusterIP: None): the test server's service range has 254
addresses. Creates with 16 concurrent connections; prints the seconds it took.
"""
import json, ssl, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

url, token, n, ns = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the test server's self-signed certificate, on loopback


def post(path, obj):
    req = urllib.request.Request(url + path, data=json.dumps(obj).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    for attempt in range(5):
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            if e.code == 409:
                return 409
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


crd_kinds = [("RayCluster", "rayclusters"), ("RayJob", "rayjobs"),
             ("RayService", "rayservices"), ("RayCronJob", "raycronjobs")]
for kind, plural in crd_kinds:
    post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": plural + ".ray.io"},
        "spec": {"group": "ray.io", "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                           "listKind": kind + "List"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}]}})
time.sleep(3)  # until the CRDs are served
post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})


def cluster(i):
    name = "c%05d" % i
    post("/apis/ray.io/v1/namespaces/%s/rayclusters" % ns, {
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"rayVersion": "2.40.0",
                 "headGroupSpec": {"serviceType": "LoadBalancer", "template": {"spec": {
                     "containers": [{"name": "ray-head", "image": "rayproject/ray:2.40.0",
                                     "securityContext": {"privileged": True}}]}}},
                 "workerGroupSpecs": [{"groupName": "w", "replicas": 2, "template": {"spec": {
                     "containers": [{"name": "ray-worker",
                                     "image": "rayproject/ray:2.40.0"}]}}}]}})
    post("/api/v1/namespaces/%s/services" % ns, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name + "-dash", "namespace": ns},
        "spec": {"clusterIP": "None", "selector": {"ray.io/cluster": name,
                                                   "ray.io/node-type": "head"},
                 "ports": [{"name": "dashboard", "port": 8265}]}})


t0 = time.time()
with ThreadPoolExecutor(16) as pool:
    list(pool.map(cluster, range(n)))
print("%.1f" % (time.time() - t0))
