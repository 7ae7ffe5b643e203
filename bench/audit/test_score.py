#!/usr/bin/env python3
"""Tests of gen.py and score.py (stdlib unittest): python3 bench/audit/test_score.py"""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402
import score  # noqa: E402
from kinds import KINDS  # noqa: E402


def finding(t, rule=None, path=None, ns=None, name=None, kind="RayCluster", suppressed=None):
    f = {
        "rule_id": rule or t["rule_id"],
        "object": {"api_version": "ray.io/v1", "kind": kind,
                   "namespace": ns or t["namespace"], "name": name or t["object"]},
        "file": t["file"], "line": 1, "column": 1,
        "path": t["path"] if path is None else path,
    }
    if suppressed is not None:
        f["suppressed"] = suppressed
    return f


class ScoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.meta = gen.generate(300, cls.dir, 5, 50, 3)
        cls.truth = score.load_truth(cls.dir)
        cls.docs = score.load_documents(cls.dir)
        cls.scorer = score.Scorer(cls.truth, cls.docs)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_rayward(self, findings):
        fs, extra = score.rayward_findings({"findings": findings, "errors": []})
        return self.scorer.score("rayward", fs, True, extra)

    def test_corpus_shape(self):
        self.assertEqual(len(self.truth), self.meta["injected_total"])
        clusters = [d for d in self.docs if d[3] == "RayCluster"]
        self.assertEqual(len(clusters), 300)
        self.assertEqual(len({(d[4], d[5]) for d in clusters}), 300)
        # every kind injected at least once, never twice on one cluster
        self.assertEqual({t["kind"] for t in self.truth}, set(KINDS))
        seen = set()
        for t in self.truth:
            key = (t["namespace"], t["object"], t["kind"])
            self.assertNotIn(key, seen)
            seen.add(key)
        # documents: the truth's file holds the object
        where = {(d[4], d[5]): d[0] for d in clusters}
        for t in self.truth:
            self.assertEqual(where[(t["namespace"], t["object"])], t["file"])

    def test_generation_is_deterministic(self):
        with tempfile.TemporaryDirectory() as other:
            gen.generate(300, other, 5, 50, 3)
            for f in os.listdir(self.dir):
                with open(os.path.join(self.dir, f)) as a, open(os.path.join(other, f)) as b:
                    self.assertEqual(a.read(), b.read(), f)

    def test_yaml_parses(self):
        try:
            import yaml  # noqa: F401
        except ImportError:
            self.skipTest("PyYAML not installed")
        gen.check(self.dir)

    def test_perfect_tool(self):
        s = self.run_rayward([finding(t) for t in self.truth])
        self.assertEqual(s["total"]["found"], len(self.truth))
        self.assertEqual(s["total"]["at_path"], len(self.truth))
        self.assertEqual(s["total"]["false_positive"], 0)
        self.assertEqual(s["total"]["misplaced"], 0)

    def test_deeper_and_ancestor_paths(self):
        aws = next(t for t in self.truth if t["kind"] == "aws-key")
        sysadm = next(t for t in self.truth if t["kind"] == "sys-admin")
        limits = next(t for t in self.truth if t["kind"] == "no-limits")
        hostnet = next(t for t in self.truth if t["kind"] == "host-network")
        s = self.run_rayward([
            finding(aws, path=aws["path"] + ".value"),                        # deeper: at path
            finding(sysadm, path=sysadm["path"].rsplit("[", 1)[0]),            # `.add`: container
            finding(limits, path=limits["path"] + ".limits"),                  # missing field
            finding(hostnet, path=hostnet["path"].rsplit(".", 1)[0]),          # template.spec
        ])
        self.assertEqual(s["by_kind"]["aws-key"]["at_path"], 1)
        self.assertEqual(s["by_kind"]["sys-admin"]["at_container"], 1)
        self.assertEqual(s["by_kind"]["no-limits"]["at_path"], 1)
        self.assertEqual(s["by_kind"]["host-network"]["at_container"], 1)
        self.assertEqual(s["total"]["false_positive"] + s["total"]["misplaced"], 0)

    def test_too_vague_or_wrong_place_is_not_found(self):
        priv = next(t for t in self.truth if t["kind"] == "privileged")
        template = priv["path"].split(".spec.containers")[0]
        other_group = (
            "spec.headGroupSpec.template" if "workerGroupSpecs" in priv["path"]
            else "spec.workerGroupSpecs[0].template"
        ) + ".spec.containers[0].securityContext.privileged"
        s = self.run_rayward([
            finding(priv, path=template),       # the whole template: too vague
            finding(priv, path=other_group),    # another group
            finding(priv, path=""),             # the object root
        ])
        self.assertEqual(s["by_kind"]["privileged"]["found"], 0)
        self.assertEqual(s["by_kind"]["privileged"]["misplaced"], 3)

    def test_false_positive_on_clean_cluster_and_wrong_rule(self):
        ns, name = sorted(self.scorer.clean)[0]
        t = dict(self.truth[0], namespace=ns, object=name)
        s = self.run_rayward([
            finding(t),                                   # injected kind, clean cluster
            finding(self.truth[0], rule="RW999"),         # a rule of no injected kind
            finding(self.truth[0], suppressed="ok"),      # suppressed: ignored
            finding(self.truth[0], kind="ServiceAccount", name=self.truth[0]["object"] + "-ray"),
        ])
        k = self.truth[0]["kind"]
        self.assertEqual(s["by_kind"][k]["false_positive"], 2)
        self.assertEqual(s["by_kind"][k]["found"], 0)
        self.assertEqual(s["other_findings_by_rule"], {"RW999": 1})
        self.assertEqual(s["findings_on_clean_clusters_by_rule"], {t["rule_id"]: 1})
        self.assertEqual(s["suppressed"], 1)

    def test_no_tls_accepts_either_rule(self):
        ts = [t for t in self.truth if t["kind"] == "no-tls"][:2]
        s = self.run_rayward([finding(ts[0], rule="RW101"), finding(ts[1], rule="RW102")])
        self.assertEqual(s["by_kind"]["no-tls"]["found"], 2)

    def test_checkov_mapping(self):
        priv = next(t for t in self.truth if t["kind"] == "privileged")
        aws = next(t for t in self.truth if t["kind"] == "aws-key")
        # the line of the AWS key in its file
        with open(os.path.join(self.dir, aws["file"])) as fh:
            lines = fh.read().split("\n")
        doc = next(d for d in self.docs if (d[4], d[5]) == (aws["namespace"], aws["object"]))
        line = next(i + 1 for i in range(doc[1] - 1, doc[2]) if "AKIA" in lines[i])
        ns, name = sorted(self.scorer.clean)[0]
        report = [
            {"check_type": "kubernetes", "summary": {"checkov_version": "3.3.30"},
             "results": {"failed_checks": [
                 {"check_id": "CKV_K8S_16",
                  "resource": f"RayCluster.{priv['namespace']}.{priv['object']}"},
                 {"check_id": "CKV_K8S_16", "resource": f"RayCluster.{ns}.{name}"},
                 {"check_id": "CKV_K8S_16",
                  "resource": f"ServiceAccount.{priv['namespace']}.{priv['object']}-ray"},
             ]}},
            {"check_type": "secrets", "summary": {"checkov_version": "3.3.30"},
             "results": {"failed_checks": [
                 {"check_id": "CKV_SECRET_2", "file_path": "/" + aws["file"],
                  "file_line_range": [line, line + 1], "resource": "abc"},
             ]}},
        ]
        fs, extra = score.checkov_findings(report, self.docs)
        s = self.scorer.score("checkov", fs, False, extra)
        self.assertEqual(s["by_kind"]["privileged"]["found"], 1)
        self.assertEqual(s["by_kind"]["privileged"]["at_object"], 1)
        self.assertEqual(s["by_kind"]["privileged"]["false_positive"], 2)
        self.assertEqual(s["by_kind"]["aws-key"]["found"], 1)
        self.assertEqual(extra["version"], "3.3.30")


if __name__ == "__main__":
    unittest.main()
