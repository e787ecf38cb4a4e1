"""Reports a phase writes next to its Tune experiment: the per-sweep-point table and curves,
and the table comparing a branched phase's branches (CSV, Markdown, PNG)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mprl.spec import sweep_label


# Stage boundaries an algorithm reports (env step at which it began), drawn on sweep curves.
STAGE_MARKERS = {"pretrain_start_env_steps": "online pre-training", "finetune_start_env_steps": "fine-tuning"}

def write_sweep_report(results: Any, phase: Any, metric: str, axis: str, out_dir: Path, write: Callable[[str], None]) -> dict[str, str]:
    """Final `metric` per sweep point across seeds: mean, 95% CI, IQM → CSV, Markdown, PNG,
    plus the learning curves per point on the phase's axis."""
    from mprl.analysis import plot_curves, summarize, to_markdown, write_report

    finals: dict[str, list[float]] = {}
    curves: dict[str, list[list[tuple[float, float]]]] = {}
    boundaries: dict[str, set[float]] = {}
    for r in results:
        label = r.config["sweep_point"]["label"]
        df = r.metrics_dataframe
        if df is None or metric not in df or df[metric].dropna().empty:
            continue
        finals.setdefault(label, []).append(float(df[metric].dropna().iloc[-1]))
        curves.setdefault(label, []).append(list(zip(df[axis].astype(float), df[metric].astype(float))))
        for key, name in STAGE_MARKERS.items():
            if key in df and len(points := df[key].dropna()) and phase.budget_unit == "env_steps":
                boundaries.setdefault(name, set()).add(float(points.iloc[-1]))
    order = [sweep_label(p) for p in phase.sweep]
    rows = summarize({label: finals[label] for label in order if label in finals})
    title = f"{phase.name}: final {metric} per sweep point ({len(phase.tune.seeds)} seed(s))"
    paths = write_report(rows, out_dir, "sweep", title)
    plot_curves(curves, out_dir / "sweep_curves.png", xlabel=axis, ylabel=metric, title=f"{phase.name}: {metric} by sweep point",
                boundaries=[(xs.pop(), name) for name, xs in boundaries.items() if len(xs) == 1])  # shared ones only
    write(to_markdown(rows, title=title))
    write(f"[{phase.name}] sweep table: {paths['md']}, {paths['csv']}, {paths['png']}; curves: {out_dir / 'sweep_curves.png'}")
    return paths

def write_branch_report(store: Any, phase: Any, node_ids: list[str], out_dir: Path, write: Callable[[str], None]) -> dict[str, str]:
    """One row per branch of a phase (e.g. one per transition point): the final metric of each
    trial, across seeds → CSV, Markdown, PNG; the table compares the branches."""
    from mprl.analysis import summarize, to_markdown, write_report

    last: dict[str, list[dict[str, Any]]] = {}  # each trial's last row, per branch label
    for node_id in node_ids:
        node = store.node(node_id)
        label = f"{node_id} ({node['branch']})" if node and node["branch"] else node_id
        by_trial = {m["trial_id"]: m for m in store.metrics(node_id=node_id)}  # ordered by iteration: the last stays
        last[label] = list(by_trial.values())
    rows_all = [m for ms in last.values() for m in ms]
    metric = "normalized_score" if all(m["normalized_score"] is not None for m in rows_all) else "evaluation_return"
    finals = {label: [float(m[metric]) for m in ms if m[metric] is not None] for label, ms in last.items()}
    rows = summarize({k: v for k, v in finals.items() if v})
    title = f"{phase.name}: final {metric} per branch ({len(phase.tune.seeds)} seed(s) each)"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = write_report(rows, out_dir, "branches", title)
    write(to_markdown(rows, title=title))
    write(f"[{phase.name}] branch table: {paths['md']}, {paths['csv']}, {paths['png']}")
    return paths
