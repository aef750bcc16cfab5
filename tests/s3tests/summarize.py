#!/usr/bin/python3
"""Summarise an s3-tests run: counts overall and per group, failure clusters.

usage: summarize.py JUNIT.xml GROUPS.json [CLEANUP.jsonl] [--failures OUT.tsv] [--set NAME]

--set issue2|garage restricts the counts to that set's groups (to read the
sets out of one `run.sh --set all`).

GROUPS.json comes from s3t_plugin.py (--s3t-groups). Outcomes: a testcase
with a <failure> is "fail", with an <error> (setup/teardown/collection or a
pytest-timeout) is "error", with <skipped> is "skip", else "pass".
"""

import collections
import json
import re
import sys
import xml.etree.ElementTree as ET


def outcomes(junit_path):
    tree = ET.parse(junit_path)
    out = {}
    for tc in tree.iter("testcase"):
        cls = tc.get("classname", "")
        name = tc.get("name", "")
        # nodeid: s3tests/functional/test_s3.py::test_x[param]
        mod = cls.replace(".", "/") + ".py"
        nodeid = mod + "::" + name
        kinds = [child.tag for child in tc]
        msg = ""
        if "failure" in kinds:
            status = "fail"
            el = tc.find("failure")
        elif "error" in kinds:
            status = "error"
            el = tc.find("error")
        elif "skipped" in kinds:
            status = "skip"
            el = tc.find("skipped")
        else:
            status = "pass"
            el = None
        if el is not None:
            msg = (el.get("message") or "") + "\n" + (el.text or "")
        prev = out.get(nodeid)
        # A test can appear twice (call failure + teardown error); keep the worst.
        rank = {"fail": 3, "error": 2, "skip": 1, "pass": 0}
        if prev is None or rank[status] > rank[prev[0]]:
            out[nodeid] = (status, msg)
    return out


_SIG_PATTERNS = [
    # botocore ClientError: "An error occurred (Code) when calling the Op operation: ..."
    (re.compile(r"An error occurred \((\w+)\) when calling the (\w+) operation"), "ClientError {0} on {1}"),
    (re.compile(r"ParamValidationError: Parameter validation failed:\s*\n?\s*(Unknown parameter in input: \"\w+\")"), "botocore too old: {0}"),
    (re.compile(r"Unknown parameter in input: \"(\w+)\""), "botocore too old: unknown parameter {0}"),
    (re.compile(r"Timeout \(?>?[\d.]+s\)?"), "pytest-timeout"),
    (re.compile(r"^E\s+(assert .{0,120})", re.M), "{0}"),
    (re.compile(r"^E\s+(\w+(?:Error|Exception)\b.{0,100})", re.M), "{0}"),
]


def signature(msg):
    for rx, fmt in _SIG_PATTERNS:
        m = rx.search(msg)
        if m:
            sig = fmt.format(*m.groups()) if m.groups() else fmt
            return re.sub(r"0x[0-9a-f]+|\b[0-9a-f]{16,}\b", "#", sig)[:160]
    first = msg.strip().splitlines()[0] if msg.strip() else "(no message)"
    return first[:160]


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    fail_out = None
    if "--failures" in argv:
        fail_out = argv[argv.index("--failures") + 1]
        args = [a for a in args if a != fail_out]
    excluded = None
    if "--set" in argv:
        name = argv[argv.index("--set") + 1]
        args = [a for a in args if a != name]
        import s3t_plugin
        excluded = s3t_plugin.EXCLUDE[name]
    junit, groups_path = args[0], args[1]
    cleanup = args[2] if len(args) > 2 else None
    res = outcomes(junit)
    with open(groups_path, encoding="utf-8") as f:
        groups = json.load(f)

    per = collections.defaultdict(collections.Counter)
    total = collections.Counter()
    faws = collections.Counter()
    frgw = collections.Counter()
    clusters = collections.defaultdict(list)
    rows = []
    for nodeid, (status, msg) in sorted(res.items()):
        info = groups.get(nodeid, {"group": "?", "markers": []})
        g = info["group"]
        if excluded is not None and g in excluded:
            continue
        per[g][status] += 1
        total[status] += 1
        if "fails_on_aws" in info["markers"]:
            faws[status] += 1
        if "fails_on_rgw" in info["markers"]:
            frgw[status] += 1
        if status in ("fail", "error"):
            sig = signature(msg)
            clusters[sig].append(nodeid.split("::")[-1])
            rows.append((g, nodeid.split("::")[-1], status, sig,
                         ",".join(m for m in info["markers"] if m in ("fails_on_aws", "fails_on_rgw"))))

    n = sum(total.values())
    print("overall: %d tests: %d pass, %d fail, %d error, %d skip" % (
        n, total["pass"], total["fail"], total["error"], total["skip"]))
    if sum(faws.values()):
        print("  of which marked fails_on_aws (RGW-specific expectations): %d: %d pass, %d fail, %d error" % (
            sum(faws.values()), faws["pass"], faws["fail"], faws["error"]))
    if sum(frgw.values()):
        print("  of which marked fails_on_rgw (often a test that cannot do what it says): %d: %d pass, %d fail, %d error" % (
            sum(frgw.values()), frgw["pass"], frgw["fail"], frgw["error"]))
    print()
    print("%-20s %5s %5s %5s %5s %5s" % ("group", "total", "pass", "fail", "error", "skip"))
    for g in sorted(per, key=lambda g: (-sum(per[g].values()), g)):
        c = per[g]
        print("%-20s %5d %5d %5d %5d %5d" % (g, sum(c.values()), c["pass"], c["fail"], c["error"], c["skip"]))
    if cleanup:
        try:
            with open(cleanup, encoding="utf-8") as f:
                lines = [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            lines = []
        print()
        print("cleanup failures (each switched to a fresh bucket prefix): %d" % len(lines))
        for l in lines[:10]:
            print("  %s %s %s: %s" % (l["phase"], l["test"].split("::")[-1], l["bucket"], l["error"][:120]))
    if clusters:
        print()
        print("failure clusters, most common first:")
        for sig, tests in sorted(clusters.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            print("  %3d  %s" % (len(tests), sig))
            print("       " + " ".join(sorted(tests)[:8]) + (" ..." if len(tests) > 8 else ""))
    if fail_out:
        with open(fail_out, "w", encoding="utf-8") as f:
            f.write("group\ttest\tstatus\tsignature\tmarker\n")
            for r in sorted(rows):
                f.write("\t".join(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
