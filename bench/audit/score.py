#!/usr/bin/env python3
"""Scores an audit tool's findings against the corpus's truth file (gen.py).

    score.py --corpus bench/out/corpus --rayward rayward.json [--checkov checkov.json] \
             [--json scores.json]

Matching, rayward (object + JSON path):
  An injected problem (truth line) is FOUND when a finding that is not suppressed
  - has one of the kind's rule ids (kinds.py; no-tls accepts RW102 or RW101),
  - is on the same object (kind RayCluster, same namespace and name), and
  - points at the right place:
      "at path":      the finding's path equals the truth path or lies inside it
                      (`...env[4].value` for truth `...env[4]`);
      "at container": the finding's path is an ancestor of the truth path, but no higher
                      than the container (`...template.spec.containers[0]`) for container
                      problems, or the pod spec (`...template.spec`) for pod problems: the
                      right container of the right group, named less precisely.
                      Cluster problems (head-lb) must be "at path".
  Every other finding of an injected kind's rule is an error of the tool:
  - "false positive": on an object where that kind was not injected at all;
  - "misplaced": on a cluster where the kind was injected, but at another place
    (another group, another container);
  - "duplicate": a second finding that matches an already-found problem (not an error,
    shown for information).

Matching, Checkov (object only): Checkov does not read pod templates inside custom
resources and reports no JSON paths, so a problem counts as found when a Checkov check
mapped to the kind (kinds.py) failed on that RayCluster: the `kubernetes` framework's
resource id `RayCluster.<namespace>.<name>`, or a `secrets` finding whose line lies in the
cluster's YAML document. Failed mapped checks on clusters without the kind are false
positives.

Standard library only.
"""

import argparse
import collections
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kinds import KINDS, KIND_ORDER, RULE_TO_KINDS  # noqa: E402

EXAMPLES = 5


# ---------------------------------------------------------------- corpus


def load_truth(corpus):
    truth = []
    with open(os.path.join(corpus, "truth.jsonl")) as fh:
        for line in fh:
            if line.strip():
                truth.append(json.loads(line))
    return truth


def load_documents(corpus):
    """(file, first line, last line, kind, namespace, name) of every YAML document.

    Reads gen.py's own output format: documents split by `---`, `kind:` at column 0,
    `metadata:` followed by `  name:` / `  namespace:`.
    """
    docs = []
    for f in sorted(os.listdir(corpus)):
        if not f.endswith(".yaml"):
            continue
        cur = None
        in_meta = False
        with open(os.path.join(corpus, f)) as fh:
            for n, line in enumerate(fh, 1):
                if line.startswith("---") or cur is None:
                    if cur is not None:
                        cur[2] = n - 1
                        docs.append(cur)
                    cur = [f, n, n, None, None, None]
                    in_meta = False
                    if line.startswith("---"):
                        continue
                if line[:1] not in (" ", "-", "\n", ""):
                    in_meta = line.startswith("metadata:")
                    if line.startswith("kind:"):
                        cur[3] = line.split(":", 1)[1].strip()
                elif in_meta and line.startswith("  ") and not line.startswith("   "):
                    k, _, v = line.strip().partition(":")
                    if k == "name":
                        cur[5] = v.strip().strip('"')
                    elif k == "namespace":
                        cur[4] = v.strip().strip('"')
                cur[2] = n
        if cur is not None:
            docs.append(cur)
    return [tuple(d) for d in docs]


# ---------------------------------------------------------------- paths



def is_inside(path, prefix):
    """`path` equals `prefix` or lies below it."""
    return path == prefix or (
        path.startswith(prefix) and path[len(prefix)] in ".["
    )


def anchor(truth_path, scope):
    """The highest ancestor of the truth path that still names the same place."""
    if scope == "container":
        m = re.match(r"^(.*?\.spec\.containers\[\d+\])", truth_path)
        return m.group(1) if m else truth_path
    if scope == "pod":
        m = re.match(r"^(.*?\.template\.spec)(?=[.\[])", truth_path)
        return m.group(1) if m else truth_path
    return truth_path


def place(finding_path, t):
    """"path", "container" or None: where a finding lies relative to a truth entry."""
    if finding_path is None:
        return None
    if is_inside(finding_path, t["path"]):
        return "path"
    scope = KINDS[t["kind"]]["scope"]
    if is_inside(t["path"], finding_path) and is_inside(finding_path, anchor(t["path"], scope)):
        return "container"
    return None


# ---------------------------------------------------------------- scoring


class Scorer:
    def __init__(self, truth, docs):
        self.truth = truth
        self.docs = docs
        self.by_obj = collections.defaultdict(list)
        for i, t in enumerate(truth):
            self.by_obj[(t["namespace"], t["object"])].append(i)
        self.clusters = {(d[4], d[5]) for d in docs if d[3] == "RayCluster"}
        self.clean = {c for c in self.clusters if c not in self.by_obj}

    def kinds_on(self, obj):
        return {self.truth[i]["kind"] for i in self.by_obj.get(obj, ())}

    def score(self, tool, findings, path_aware, extra=None):
        """findings: dicts with rule (rule or check id), kinds, obj_kind, obj, path, where."""
        found = {}  # truth index -> "path" | "container"
        per_kind = {
            k: collections.Counter(injected=0, found=0, at_path=0, at_container=0, at_object=0,
                                   false_positive=0, misplaced=0, duplicate=0)
            for k in KIND_ORDER
        }
        for t in self.truth:
            per_kind[t["kind"]]["injected"] += 1
        examples = collections.defaultdict(list)
        other = collections.Counter()
        on_clean = collections.Counter()
        for f in findings:
            obj = f["obj"]
            if f["obj_kind"] == "RayCluster" and obj in self.clean:
                on_clean[f["rule"]] += 1
            if not f["kinds"]:
                other[f["rule"]] += 1
                continue
            for kind in f["kinds"]:
                hit = None
                cands = [
                    i for i in self.by_obj.get(obj, ())
                    if self.truth[i]["kind"] == kind
                ] if f["obj_kind"] == "RayCluster" else []
                for i in cands:
                    p = place(f["path"], self.truth[i]) if path_aware else "object"
                    if p:
                        hit = (i, p)
                        break
                c = per_kind[kind]
                if hit:
                    i, p = hit
                    prev = found.get(i)
                    if prev is None:
                        found[i] = p
                    elif prev == "container" and p == "path":
                        found[i] = p
                        c["duplicate"] += 1
                    else:
                        c["duplicate"] += 1
                elif cands:
                    c["misplaced"] += 1
                    if len(examples[f"misplaced:{kind}"]) < EXAMPLES:
                        examples[f"misplaced:{kind}"].append({
                            "finding": f["where"],
                            "truth": [self.truth[i]["path"] for i in cands],
                        })
                else:
                    c["false_positive"] += 1
                    if len(examples[f"false_positive:{kind}"]) < EXAMPLES:
                        examples[f"false_positive:{kind}"].append({
                            "finding": f["where"],
                            "injected_on_object": sorted(self.kinds_on(obj)),
                        })
        for i, t in enumerate(self.truth):
            c = per_kind[t["kind"]]
            p = found.get(i)
            if p:
                c["found"] += 1
                c[{"path": "at_path", "container": "at_container", "object": "at_object"}[p]] += 1
            elif len(examples[f"missed:{t['kind']}"]) < EXAMPLES:
                examples[f"missed:{t['kind']}"].append(t)
        total = collections.Counter()
        for c in per_kind.values():
            total.update(c)
        seen_rules = collections.Counter(f["rule"] for f in findings)
        out = {
            "tool": tool,
            "path_aware": path_aware,
            "clusters": len(self.clusters),
            "clean_clusters": len(self.clean),
            "findings": len(findings),
            "total": dict(total),
            "by_kind": {k: dict(v) for k, v in per_kind.items()},
            "findings_by_rule": dict(sorted(seen_rules.items())),
            "other_findings_by_rule": dict(sorted(other.items())),
            "findings_on_clean_clusters_by_rule": dict(sorted(on_clean.items())),
            "examples": dict(examples),
        }
        if extra:
            out.update(extra)
        return out


# ---------------------------------------------------------------- tools


def rayward_findings(report):
    out = []
    suppressed = 0
    for f in report.get("findings", []):
        if f.get("suppressed") is not None:
            suppressed += 1
            continue
        o = f.get("object") or {}
        obj = (o.get("namespace"), o.get("name"))
        out.append({
            "rule": f["rule_id"],
            "kinds": RULE_TO_KINDS.get(f["rule_id"], []),
            "obj_kind": o.get("kind"),
            "obj": obj,
            "path": f.get("path"),
            "where": f"{f['rule_id']} {o.get('kind')}/{obj[0]}/{obj[1]} {f.get('path')} "
                     f"({f.get('file')}:{f.get('line')})",
        })
    extra = {
        "version": report.get("version"),
        "errors": len(report.get("errors") or []),
        "error_examples": (report.get("errors") or [])[:EXAMPLES],
        "suppressed": suppressed,
    }
    return out, extra


def checkov_findings(report, docs):
    if isinstance(report, dict):
        report = [report]
    check_kinds = collections.defaultdict(list)
    for k, d in KINDS.items():
        for c in d["checkov"]:
            check_kinds[c].append(k)
    # file -> sorted document ranges, for line -> object
    ranges = collections.defaultdict(list)
    for d in docs:
        ranges[d[0]].append(d)
    out = []
    summaries = {}
    for block in report:
        ctype = block.get("check_type", "?")
        summaries[ctype] = block.get("summary")
        for f in (block.get("results") or {}).get("failed_checks", []):
            cid = f["check_id"]
            obj_kind, obj = None, (None, None)
            if ctype == "secrets":
                fname = os.path.basename(f.get("file_path", ""))
                line = (f.get("file_line_range") or [0])[0]
                for d in ranges.get(fname, ()):
                    if d[1] <= line <= d[2]:
                        obj_kind, obj = d[3], (d[4], d[5])
                        break
            else:
                parts = (f.get("resource") or "").split(".")
                if len(parts) >= 3:
                    obj_kind, obj = parts[0], (parts[1], ".".join(parts[2:]))
                elif len(parts) == 2:
                    obj_kind, obj = parts[0], (None, parts[1])
            out.append({
                "rule": cid,
                "kinds": check_kinds.get(cid, []),
                "obj_kind": obj_kind,
                "obj": obj,
                "path": None,
                "where": f"{cid} {f.get('resource')} {f.get('file_path')}:"
                         f"{f.get('file_line_range')}",
            })
    versions = {s.get("checkov_version") for s in summaries.values() if s}
    return out, {"version": ", ".join(sorted(v for v in versions if v)),
                 "summaries": summaries}


# ---------------------------------------------------------------- text summary


def pct(a, b):
    return "n/a" if b == 0 else f"{100.0 * a / b:.1f}%"


def print_summary(s, fh):
    t = s["total"]
    print(f"== {s['tool']} {s.get('version') or ''}: {s['findings']} findings, "
          f"{t['found']}/{t['injected']} injected problems found ({pct(t['found'], t['injected'])}"
          f"; at path {t['at_path']}, at container {t['at_container']}, "
          f"object only {t['at_object']}), "
          f"false positives {t['false_positive']}, misplaced {t['misplaced']}", file=fh)
    for k in KIND_ORDER:
        c = s["by_kind"][k]
        print(f"  {k:16} {c['found']:6}/{c['injected']:<6} {pct(c['found'], c['injected']):>7}"
              f"  fp {c['false_positive']:<5} misplaced {c['misplaced']:<5}"
              f" dup {c['duplicate']}", file=fh)
    if s["other_findings_by_rule"]:
        print(f"  other rules: {s['other_findings_by_rule']}", file=fh)
    if s["findings_on_clean_clusters_by_rule"]:
        print(f"  on clean clusters: {s['findings_on_clean_clusters_by_rule']}", file=fh)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--rayward", help="output of `rayward audit DIR --format json`")
    ap.add_argument("--checkov", nargs="+",
                    help="output(s) of `checkov -d DIR -o json` (one per framework run)")
    ap.add_argument("--json", help="write the scores here")
    a = ap.parse_args()

    truth = load_truth(a.corpus)
    docs = load_documents(a.corpus)
    scorer = Scorer(truth, docs)
    result = {"corpus": json.load(open(os.path.join(a.corpus, "corpus.json")))}
    if a.rayward:
        with open(a.rayward) as fh:
            findings, extra = rayward_findings(json.load(fh))
        result["rayward"] = scorer.score("rayward", findings, True, extra)
        print_summary(result["rayward"], sys.stdout)
    if a.checkov:
        blocks = []
        for path in a.checkov:
            with open(path) as fh:
                rep = json.load(fh)
            blocks.extend(rep if isinstance(rep, list) else [rep])
        findings, extra = checkov_findings(blocks, docs)
        result["checkov"] = scorer.score("checkov", findings, False, extra)
        print_summary(result["checkov"], sys.stdout)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
