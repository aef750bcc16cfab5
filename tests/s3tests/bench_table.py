#!/usr/bin/python3
"""Side-by-side table (medians over runs) from a bench-compare.sh output dir.

usage: bench_table.py OUT_DIR

Reads OUT_DIR/<server>-<run>.json (tests/bench -json) and
OUT_DIR/<server>-<run>.server.json (start-up and RSS written by
bench-compare.sh) and prints a Markdown table with MinIO and entrepot side
by side and the ratio entrepot / MinIO of the figure that matters (MB/s for
objects >= 1 MiB, ops/s otherwise; for one-at-a-time latency, MinIO p50 /
entrepot p50, so > 1 means entrepot is faster).
"""

import collections
import glob
import json
import os
import re
import statistics
import sys

SERVERS = ("minio", "entrepot")


def size_label(n):
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return "%d %s" % (n // div, unit)
    return "%d B" % n


def load(out):
    results = collections.defaultdict(lambda: collections.defaultdict(list))
    servers = collections.defaultdict(list)
    runs = collections.Counter()
    for path in sorted(glob.glob(os.path.join(out, "*-*.json"))):
        base = os.path.basename(path)
        m = re.match(r"^(minio|entrepot)-(\d+)\.(server\.)?json$", base)
        if not m:
            continue
        name, is_server = m.group(1), m.group(3)
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if is_server:
            servers[name].append(data)
            continue
        runs[name] += 1
        for r in data.get("results", []):
            key = (r["phase"], r["op"], r["size"])
            results[key][name].append(r)
    return results, servers, runs


def med(rows, field):
    vals = [r[field] for r in rows]
    return statistics.median(vals) if vals else None


def fmt_ms(ns):
    return "-" if ns is None else "%.1f" % (ns / 1e6)


def main(argv):
    out = argv[1]
    results, servers, runs = load(out)
    order = {"put": 0, "get": 1, "mixed": 2, "latency": 3}
    keys = sorted(results, key=lambda k: (order.get(k[0], 9), -k[2], k[1]))
    print("Medians over %s run(s); MB = 10^6 bytes; latencies in ms.\n" % (
        ", ".join("%s %d" % (s, runs[s]) for s in SERVERS if runs[s]) or "0"))
    print("| phase | op | size | MinIO MB/s | MinIO ops/s | MinIO p50 / p99 | entrepot MB/s | entrepot ops/s | entrepot p50 / p99 | entrepot / MinIO | errors (M / e) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in keys:
        phase, op, size = key
        cells = []
        figs = {}
        errs = []
        for s in SERVERS:
            rows = results[key].get(s, [])
            if not rows:
                cells += ["-", "-", "-"]
                errs.append("-")
                continue
            mb, ops = med(rows, "mb_per_sec"), med(rows, "ops_per_sec")
            p50, p99 = med(rows, "p50_ns"), med(rows, "p99_ns")
            figs[s] = (mb, ops, p50)
            cells += ["%.1f" % mb if phase != "latency" else "-", "%.0f" % ops,
                      "%s / %s" % (fmt_ms(p50), fmt_ms(p99))]
            errs.append(str(sum(r["errors"] for r in rows)))
        ratio = "-"
        if len(figs) == 2:
            (mmb, mops, mp50), (emb, eops, ep50) = figs["minio"], figs["entrepot"]
            if phase == "latency":
                ratio = "%.2f× (p50)" % (mp50 / ep50) if ep50 else "-"
            elif size >= (1 << 20):
                ratio = "%.2f× (MB/s)" % (emb / mmb) if mmb else "-"
            else:
                ratio = "%.2f× (ops/s)" % (eops / mops) if mops else "-"
        print("| %s | %s | %s | %s | %s | %s |" % (phase, op, size_label(size), " | ".join(cells), ratio, " / ".join(errs)))
    print()
    print("| server | runs | start to first response (ms) | idle RSS (MiB) | peak RSS, VmHWM (MiB) |")
    print("|---|---|---|---|---|")
    for s in SERVERS:
        rows = servers.get(s)
        if not rows:
            continue
        st = statistics.median(r["start_to_first_response_ms"] for r in rows)
        idle = statistics.median(r["idle_rss_kib"] for r in rows) / 1024
        peak = statistics.median(r["peak_rss_kib"] for r in rows) / 1024
        peak_max = max(r["peak_rss_kib"] for r in rows) / 1024
        print("| %s | %d | %.0f | %.1f | %.1f (max %.1f) |" % (s, len(rows), st, idle, peak, peak_max))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
