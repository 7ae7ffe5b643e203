#!/usr/bin/env python3
"""Writes N insecure RayClusters, each with a dashboard Service, as one YAML stream, for the
HTML report benchmark (bench/report/run.sh).

usage: gen.py N OUT.yaml [NAMESPACES]

The clusters are those of bench/live/populate.py (head `LoadBalancer`, privileged head, Ray
2.40 image, one worker group), spread over NAMESPACES namespaces (default 10); each Service
is a NodePort publishing the dashboard, a finding that counts against the cluster it
selects. 10,000 clusters give about 200,000 findings.
"""
import sys

n, out = int(sys.argv[1]), sys.argv[2]
spaces = int(sys.argv[3]) if len(sys.argv) > 3 else 10

CLUSTER = """apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: c{i:05d}
  namespace: team-{ns}
spec:
  rayVersion: "2.40.0"
  headGroupSpec:
    serviceType: LoadBalancer
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.40.0
          securityContext:
            privileged: true
  workerGroupSpecs:
  - groupName: w
    replicas: 2
    template:
      spec:
        containers:
        - name: ray-worker
          image: rayproject/ray:2.40.0
---
apiVersion: v1
kind: Service
metadata:
  name: c{i:05d}-dash
  namespace: team-{ns}
spec:
  type: NodePort
  selector:
    ray.io/cluster: c{i:05d}
    ray.io/node-type: head
  ports:
  - name: dashboard
    port: 8265
"""

with open(out, "w") as f:
    for i in range(n):
        if i:
            f.write("---\n")
        f.write(CLUSTER.format(i=i, ns=i % spaces))
