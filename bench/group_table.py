#!/usr/bin/env python3
"""bench/group_table.py — a job group's summary (GET /groups/{id}) as a
Markdown table: one row per grid point, one column per epoch, each cell the
kNN top-1 mean ± sample std over the point's seeds (in %), with the number
of jobs with that epoch (n=) when it is fewer than the point's jobs with
any epoch; the best point's last epoch in bold.

    python3 bench/group_table.py http://127.0.0.1:8080 1 [metric]
    python3 bench/group_table.py DIR/summary.json [metric]     # isif group's


metric: knn_top1 (default) or any other summarised metric (loss, ...).
"""
import json
import sys
import urllib.request


def value_text(v):
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def point_name(p):
    return ", ".join(f"{k}={value_text(v)}" for k, v in p["values"].items()) or f"point {p['point']}"


def cell(s, metric, scale):
    m = s.get(metric)
    if not m:
        return "—"
    sd = f"{scale * m['std']:.2f}" if m["n"] > 1 else "—"   # one seed: no spread to show
    text = f"{scale * m['mean']:.2f} ± {sd}"
    return text if m["n"] == s.get("seeds", m["n"]) else f"{text} (n={m['n']})"


def main():
    if sys.argv[1].endswith(".json"):   # isif group's DIR/summary.json
        g = json.load(open(sys.argv[1]))
        metric = sys.argv[2] if len(sys.argv) > 2 else "knn_top1"
        g["id"] = sys.argv[1]
        g["status"] = {s: sum(j["status"] == s for j in g["jobs"]) for s in ("succeeded", "failed")}
    else:
        base, gid = sys.argv[1], sys.argv[2]
        metric = sys.argv[3] if len(sys.argv) > 3 else "knn_top1"
        g = json.load(urllib.request.urlopen(f"{base}/groups/{gid}"))
    scale = 100 if metric.startswith("knn_top") or metric.startswith("recall") or metric.startswith("probe") else 1
    epochs = sorted({s["epoch"] for p in g["points"] for s in p["summary"]})
    # jobs with any row (cancelled-before-start jobs do not count)
    seeds = {p["point"]: max([s["n"] for s in p["summary"]] or [0]) for p in g["points"]}
    last = {}
    for p in g["points"]:
        done = [s for s in p["summary"] if s.get(metric)]
        if done and done[-1]["epoch"] == epochs[-1]:
            last[p["point"]] = done[-1][metric]["mean"]
    best = max(last, key=last.get) if metric != "loss" and last else None
    print(f"group {g['id']}: base {json.dumps(g['base'])}; {g['n_jobs']} jobs, status {g['status']}")
    print()
    print("| grid point | jobs | " + " | ".join(f"epoch {e}" for e in epochs) + " |")
    print("|---|---|" + "---|" * len(epochs))
    for p in g["points"]:
        by_epoch = {s["epoch"]: dict(s, seeds=seeds[p["point"]]) for s in p["summary"]}
        cells = [cell(by_epoch[e], metric, scale) if e in by_epoch else "—" for e in epochs]
        if p["point"] == best:
            cells[-1] = f"**{cells[-1]}**"
        print(f"| {point_name(p)} | {seeds[p['point']]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
