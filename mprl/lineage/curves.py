"""Learning-curve data from a run's lineage, on the axis each paradigm needs.

Online and hybrid phases are plotted against environment steps, offline phases against
gradient updates; a panel per axis, phases laid end to end along their lineage chain with
their boundaries marked. `curve_data` is the one JSON shape that `mprl curves` and the
Serve web page both draw.
"""

from __future__ import annotations

import json
from typing import Any

from mprl.envs import describe_env
from mprl.lineage.store import LineageStore
from mprl.axes import AXIS_UNITS, UNIT_WORDS


AXIS_LABELS = {axis: UNIT_WORDS[unit] for axis, unit in AXIS_UNITS.items()}
# Stage starts an algorithm reports (OPT), marked inside a phase.
STAGE_KEYS = {"pretrain_start_env_steps": "online pre-training", "finetune_start_env_steps": "fine-tuning"}


def _offsets(nodes: list[dict[str, Any]], checkpoints: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Where each node starts on its axis: at the seeding checkpoint of its nearest ancestor on
    the same axis (a branch from a 50% checkpoint starts at 50%, not at its parent's end)."""
    by_id = {n["node_id"]: n for n in nodes}
    out: dict[str, float] = {}
    for n in nodes:  # ordered by phase, so ancestors come first
        offset, ck, seen = 0.0, n["parent_checkpoint_id"], set()
        while ck in checkpoints and ck not in seen:
            seen.add(ck)
            parent = by_id.get(checkpoints[ck]["node_id"])
            if parent is None:
                break
            if parent["axis"] == n["axis"] and checkpoints[ck][n["axis"]] is not None:
                offset = out.get(parent["node_id"], 0.0) + float(checkpoints[ck][n["axis"]])
                break
            ck = parent["parent_checkpoint_id"]
        out[n["node_id"]] = offset
    return out


def curve_data(store: LineageStore) -> dict[str, Any]:
    """{"run": ..., "panels": [{"axis", "label", "nodes": [{node_id, phase, algorithm, paradigm, branch,
    offset, end, trials: [{trial_id, seed, sweep_label, status, sampled, points: [[x, evaluation_return, normalized_score]]}],
    checkpoints: [{checkpoint_id, x, evaluation_return, normalized_score, selected, videos}],
    stages: [[x, name]]}]}]} — x already shifted by the node's offset."""
    run = store.run()
    nodes = store.nodes()
    all_ckpts = {c["checkpoint_id"]: c for c in store.checkpoints()}
    parent_node = {n["node_id"]: all_ckpts[n["parent_checkpoint_id"]]["node_id"] if n["parent_checkpoint_id"] in all_ckpts else None for n in nodes}
    trials = {t["trial_id"]: t for t in store.trials()}
    videos: dict[str, list[str]] = {}
    for v in store.videos():
        videos.setdefault(v["checkpoint_id"], []).append(v["video_id"])

    per_node: dict[str, dict[str, Any]] = {}
    ends: dict[str, float] = {}
    for n in nodes:
        axis = n["axis"]
        curves: dict[str, dict[str, Any]] = {}
        stages: dict[str, float] = {}
        for m in store.metrics(node_id=n["node_id"]):
            x = m[axis]
            if x is None:
                continue
            t = trials.get(m["trial_id"], {})
            data = json.loads(m["data_json"] or "{}")
            if m["trial_id"] not in curves:
                curves[m["trial_id"]] = {"trial_id": m["trial_id"], "seed": t.get("seed"), "sweep_label": t.get("sweep_label"),
                                         "status": t.get("status"), "sampled": json.loads(t.get("config_json") or "null"), "points": []}
                if data.get("initial_evaluation_return") is not None:
                    # A warm-started phase's evaluation before its first update: the curve
                    # starts where the parent checkpoint was.
                    curves[m["trial_id"]]["points"].append([0, data["initial_evaluation_return"], data.get("initial_normalized_score")])
            curves[m["trial_id"]]["points"].append([x, m["evaluation_return"], m["normalized_score"]])
            for key, name in STAGE_KEYS.items():
                if axis == "num_env_steps" and data.get(key) is not None:
                    stages.setdefault(name, float(data[key]))
            ends[n["node_id"]] = max(ends.get(n["node_id"], 0.0), float(x))
        ckpts = [
            {"checkpoint_id": c["checkpoint_id"], "x": c[axis], "evaluation_return": c["evaluation_return"],
             "normalized_score": c["normalized_score"], "selected": bool(c["selected"]), "selection": c["selection"],
             "trial_id": c["trial_id"], "videos": videos.get(c["checkpoint_id"], [])}
            for c in store.checkpoints(node_id=n["node_id"]) if c[axis] is not None
        ]
        per_node[n["node_id"]] = {"curves": list(curves.values()), "checkpoints": ckpts, "stages": stages}

    offsets = _offsets(nodes, all_ckpts)
    panels: dict[str, dict[str, Any]] = {}
    for n in nodes:
        d, off = per_node[n["node_id"]], offsets[n["node_id"]]
        for curve in d["curves"]:
            curve["points"] = [[x + off, r, s] for x, r, s in curve["points"]]
        for c in d["checkpoints"]:
            c["x"] = c["x"] + off
        panel = panels.setdefault(n["axis"], {"axis": n["axis"], "label": AXIS_LABELS[n["axis"]], "nodes": []})
        panel["nodes"].append({
            "node_id": n["node_id"], "phase": n["phase"], "algorithm": n["algorithm"], "paradigm": n["paradigm"],
            "env": n["env"], "context": describe_env(n["env"]),
            "branch": n["branch"], "status": n["status"], "parent_node": parent_node[n["node_id"]],
            "offset": off, "end": off + ends.get(n["node_id"], 0.0),
            "trials": d["curves"], "checkpoints": d["checkpoints"],
            "stages": [[x + off, name] for name, x in d["stages"].items()],
        })
    order = [a for a in ("num_env_steps", "num_updates") if a in panels]
    return {"run": {k: run[k] for k in ("run_id", "name", "status", "created_at")}, "panels": [panels[a] for a in order]}
