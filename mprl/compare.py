"""Comparing phase runs across runs: the web page's Compare view and `mprl compare`.

A *phase run* is one node of a run's lineage (a phase, or one branch of it), named
`RUN_ID/NODE_ID`. Each is drawn on its paradigm's axis — environment steps for online and
hybrid phases, gradient updates for offline ones — counted from the phase run's own start,
so that phase runs of different runs line up; the y quantity is the one `mprl curves` plots
(normalised score when every point has one, else the evaluation return). The final score of
a phase run is, per trial (seed), its last evaluation; across trials: mean, 95% bootstrap CI
and IQM (`mprl.analysis.summarize`). Videos: those recorded of the phase run's checkpoints,
the selected ones first.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mprl.errors import MprlError

METRIC_LABELS = {"normalized_score": "normalized score", "evaluation_return": "evaluation return"}


def parse_refs(items: Sequence[str], phase: str | None = None) -> list[tuple[str, str | None]]:
    """'RUN', 'RUN/NODE' (or 'RUN:NODE') → (run, node or the --phase or None: every node)."""
    out = []
    for item in items:
        for sep in ("/", ":"):
            if sep in item:
                run, node = item.split(sep, 1)
                out.append((run, node))
                break
        else:
            out.append((item, phase))
    return out


def _node_runs(storage_path: str | Path, refs: Sequence[tuple[str, str | None]]) -> list[tuple[str, Path, str]]:
    """(run id, run folder, node id) for every phase run the references name."""
    from mprl.lineage import LineageStore, find_run

    out = []
    for run, node in refs:
        run_dir = Path(find_run(run, str(storage_path)))
        with LineageStore(run_dir, readonly=True) as store:
            run_id = store.run()["run_id"]
            nodes = store.nodes()
        ids = [n["node_id"] for n in nodes]
        if node is None:
            chosen = ids
        else:
            chosen = [n["node_id"] for n in nodes if n["node_id"] == node] or [n["node_id"] for n in nodes if n["phase"] == node]
            if not chosen:
                raise MprlError(f"run {run_id} has no phase run {node!r}; it has {', '.join(ids) or 'none'} (`mprl lineage show {run_id}`)")
        out.extend((run_id, run_dir, nid) for nid in chosen)
    if not out:
        raise MprlError("nothing to compare: name runs (RUN) or phase runs (RUN/NODE)")
    return out


def compare(storage_path: str | Path, refs: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
    """{"metric", "panels": [{axis, label, series: [{key, run_id, node_id, phase, algorithm, trial_id, seed, points}]}],
    "table": [{key, ..., n, mean, ci_low, ci_high, iqm, scores}], "videos": {key: [video ids]}}."""
    from mprl.analysis import summarize
    from mprl.lineage import LineageStore
    from mprl.lineage.curves import curve_data

    picked = _node_runs(storage_path, refs)
    entries = []
    for run_id, run_dir, node_id in picked:
        with LineageStore(run_dir, readonly=True) as store:
            data = curve_data(store)
            selected = {c["checkpoint_id"] for c in store.checkpoints(node_id, selected_only=True)}
            videos = sorted(store.videos(), key=lambda v: v["created_at"])
            cks = {c["checkpoint_id"] for c in store.checkpoints(node_id)}
        node = next(n for p in data["panels"] for n in p["nodes"] if n["node_id"] == node_id) if any(
            n["node_id"] == node_id for p in data["panels"] for n in p["nodes"]) else None
        if node is None:
            continue
        axis = next(p for p in data["panels"] if node in p["nodes"])
        vids = [v["video_id"] for v in videos if v["checkpoint_id"] in selected] + [v["video_id"] for v in videos if v["checkpoint_id"] in cks - selected]
        entries.append({"key": f"{run_id}/{node_id}", "run_id": run_id, "node_id": node_id, "axis": axis["axis"], "label": axis["label"],
                        "node": node, "videos": vids})
    points = [p for e in entries for t in e["node"]["trials"] for p in t["points"] if p[1] is not None or p[2] is not None]
    metric = "normalized_score" if points and all(p[2] is not None for p in points) else "evaluation_return"
    yi = 2 if metric == "normalized_score" else 1
    panels: dict[str, dict[str, Any]] = {}
    finals: dict[str, list[float]] = {}
    for e in entries:
        n = e["node"]
        panel = panels.setdefault(e["axis"], {"axis": e["axis"], "label": e["label"], "series": []})
        scores = []
        for t in n["trials"]:
            pts = [[p[0] - n["offset"], p[yi]] for p in t["points"] if p[yi] is not None]
            panel["series"].append({"key": e["key"], "run_id": e["run_id"], "node_id": e["node_id"], "phase": n["phase"],
                                    "algorithm": n["algorithm"], "paradigm": n["paradigm"], "env": n["env"], "trial_id": t["trial_id"],
                                    "seed": t["seed"], "sweep_label": t["sweep_label"], "points": pts})
            if pts:
                scores.append(float(pts[-1][1]))
        finals[e["key"]] = scores
    table = []
    summaries = {r.point: r for r in summarize({k: v for k, v in finals.items() if v})}
    for e in entries:
        n, r = e["node"], summaries.get(e["key"])
        table.append({"key": e["key"], "run_id": e["run_id"], "node_id": e["node_id"], "phase": n["phase"], "algorithm": n["algorithm"],
                      "paradigm": n["paradigm"], "env": n["env"], "status": n["status"], "axis": e["axis"],
                      "n": r.n if r else 0, "mean": r.mean if r else None, "ci_low": r.ci_low if r else None,
                      "ci_high": r.ci_high if r else None, "iqm": r.iqm if r else None, "scores": r.scores if r else []})
    order = [a for a in ("num_env_steps", "num_updates") if a in panels]
    return {"metric": metric, "metric_label": METRIC_LABELS[metric], "panels": [panels[a] for a in order], "table": table,
            "videos": {e["key"]: e["videos"] for e in entries}}


def format_table(result: dict[str, Any]) -> str:
    """The final-score table as aligned text (what `mprl compare` prints)."""
    def f(v: Any) -> str:
        return "–" if v is None else f"{v:.2f}"

    head = ("phase run", "algorithm", "paradigm", "n", f"mean {result['metric_label']}", "95% CI", "IQM")
    rows = [(r["key"], r["algorithm"], r["paradigm"], str(r["n"]), f(r["mean"]),
             "–" if r["ci_low"] is None else f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]", f(r["iqm"])) for r in result["table"]]
    w = [max(len(x[i]) for x in (head, *rows)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(row)).rstrip() for row in (head, *rows)]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """One panel per axis, a line per phase run (mean over seeds, min–max band), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    panels = result["panels"]
    if not panels:
        raise MprlError("nothing to plot: the phase runs have no evaluations yet")
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.2), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    keys = [r["key"] for r in result["table"]]
    for ax, panel in zip(axes[0], panels):
        for key in dict.fromkeys(s["key"] for s in panel["series"]):
            curves = [s for s in panel["series"] if s["key"] == key and s["points"]]
            if not curves:
                continue
            xs = np.unique(np.concatenate([np.array([p[0] for p in c["points"]], float) for c in curves]))
            ys = np.array([np.interp(xs, [p[0] for p in c["points"]], [p[1] for p in c["points"]]) for c in curves])
            colour = colours[keys.index(key) % len(colours)]
            ax.plot(xs, ys.mean(0), color=colour, label=f"{key} ({curves[0]['algorithm']}, n={len(curves)})")
            if len(curves) > 1:
                ax.fill_between(xs, ys.min(0), ys.max(0), color=colour, alpha=0.15)
        ax.set_xlabel(panel["label"] + " (from the phase's start)")
        ax.set_ylabel(result["metric_label"])
        for axis in (ax.xaxis, ax.yaxis):  # no offset notation: a 1e-4 wiggle must not read as a cliff
            fmt = ScalarFormatter(useOffset=False)
            fmt.set_scientific(False)
            axis.set_major_formatter(fmt)
            axis.set_major_locator(MaxNLocator(6))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    result = compare(args.storage_path, parse_refs(args.runs, args.phase))
    print(format_table(result))
    if not args.no_plot:
        out = plot(result, args.output)
        print(f"\nplot: {out}")
    return 0


def add_subparser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compare", help="compare phase runs across runs: final scores (mean, 95% CI, IQM) and curves on each paradigm's axis")
    c.add_argument("runs", nargs="+", help="RUN (every phase run of it, or --phase) or RUN/NODE (one phase run)")
    c.add_argument("--phase", help="the phase (or node id) to take from each RUN given without /NODE")
    c.add_argument("--storage-path", default="./mprl_results", help="where the runs are (default ./mprl_results)")
    c.add_argument("-o", "--output", default="compare.png", help="the plot (PNG, default compare.png)")
    c.add_argument("--no-plot", action="store_true", help="print the table only")
    c.set_defaults(func=cmd_compare)
