"""A run's lineage as text (`mprl lineage show`), JSON and Graphviz DOT (`mprl lineage export`).

The tree alternates phase runs and the checkpoints that seed the next phase: a node, under it
its selected checkpoints, under each checkpoint the phase runs it seeded. That is the order in
which the scheduler made them, so a reader follows one policy's history by reading down. A node
with several parents (an ensemble: member k from checkpoint k) is drawn under its member 0 and
named, with its member index, under each other member's checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mprl.lineage.store import LineageError, LineageStore
from mprl.axes import AXIS_UNITS, UNIT_SHORT

UNIT_NAMES = {"updates": "updates", "env_steps": "env steps"}
SCORE_LEGEND = "score = normalized score (100 × (R − random) / (expert − random)); return = evaluation return"


@dataclass
class Lineage:
    """The store's records indexed for walking the tree (read once, so rendering is pure)."""

    run: dict[str, Any]
    nodes: list[dict[str, Any]]
    checkpoints: dict[str, dict[str, Any]]
    trials: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by node
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by node
    videos: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by checkpoint
    best: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> its best row (metrics or checkpoint)
    datasets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by phase: built from earlier phases' experience
    selections: dict[str, dict[str, Any]] = field(default_factory=dict)  # by phase: the validated choice of its start
    parents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by node: its parent edges, member 0 first

    @property
    def spec(self) -> dict[str, Any]:
        return json.loads(self.run.get("spec_json") or "{}")

    def parent_node(self, node: dict[str, Any]) -> str | None:
        ck = self.checkpoints.get(node["parent_checkpoint_id"] or "")
        return ck["node_id"] if ck else None

    def roots(self) -> list[dict[str, Any]]:
        """Nodes seeded by nothing, or by a checkpoint from outside this run."""
        return [n for n in self.nodes if self.parent_node(n) is None]

    def parent_edges(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        """The node's parents {checkpoint_id, member, label}: K for an ensemble, else its one parent (or none)."""
        return self.parents.get(node["node_id"]) or (
            [{"node_id": node["node_id"], "member": 0, "checkpoint_id": node["parent_checkpoint_id"], "label": None}] if node["parent_checkpoint_id"] else [])

    def seeded_by(self, checkpoint_id: str) -> list[dict[str, Any]]:
        """The nodes that this checkpoint is a parent of (as the one parent or as any ensemble member)."""
        return [n for n in self.nodes if any(e["checkpoint_id"] == checkpoint_id for e in self.parent_edges(n))]

    def shown_checkpoints(self, node_id: str) -> list[dict[str, Any]]:
        """The node's selected checkpoints, plus any that seeded a phase without being marked selected."""
        seeds = {e["checkpoint_id"] for n in self.nodes for e in self.parent_edges(n)}
        cks = [c for c in self.checkpoints.values()
               if c["node_id"] == node_id and (c["selected"] or c["checkpoint_id"] in seeds)]
        axis = next(n["axis"] for n in self.nodes if n["node_id"] == node_id)
        return sorted(cks, key=lambda c: (c[axis] if c[axis] is not None else -1, c["trial_id"], c["checkpoint_id"]))


def load(store: LineageStore) -> Lineage:
    """Read every record the renderers need; an empty lineage is an error (nothing to show)."""
    run = store.run()
    nodes = store.nodes()
    if not nodes:
        raise LineageError(f"Run {run['run_id']} ({run['status']}) has no phase runs in its lineage yet: "
                           "the scheduler records a phase when it starts it.")
    lin = Lineage(run=run, nodes=nodes, checkpoints={c["checkpoint_id"]: c for c in store.checkpoints()})
    for t in store.trials():
        lin.trials.setdefault(t["node_id"], []).append(t)
    lin.transfers = {t["node_id"]: t for t in store.transfers()}
    for v in store.videos():
        lin.videos.setdefault(v["checkpoint_id"], []).append(v)
    for d in store.datasets():  # recorded under the phase's name (built once, before its trials)
        lin.datasets.setdefault(d["node_id"], []).append(d)
    lin.selections = {s["node_id"]: s for s in store.selections()}
    for e in store.parents():
        lin.parents.setdefault(e["node_id"], []).append(e)
    modes = {p.get("name"): (p.get("tune") or {}).get("mode", "max") for p in lin.spec.get("phases", []) if isinstance(p, dict)}
    for n in nodes:
        # checkpoints first: on a tie (a checkpoint is written after every evaluation) the best names a checkpoint
        rows = [c for c in lin.checkpoints.values() if c["node_id"] == n["node_id"]] + store.metrics(node_id=n["node_id"])
        best = best_row(rows, modes.get(n["phase"], "max"))
        if best is not None:
            lin.best[n["node_id"]] = best
    return lin


def score_of(row: dict[str, Any]) -> tuple[float, str] | None:
    """(value, "score"|"return"): the normalized score when the env has reference scores, else the return."""
    if row.get("normalized_score") is not None:
        return float(row["normalized_score"]), "score"
    if row.get("evaluation_return") is not None:
        return float(row["evaluation_return"]), "return"
    return None


def best_row(rows: Iterable[dict[str, Any]], mode: str = "max") -> dict[str, Any] | None:
    """The best row by normalized score (or by return when no row has one), by the phase's mode."""
    rows = [r for r in rows if score_of(r) is not None]
    if any(r.get("normalized_score") is not None for r in rows):
        rows = [r for r in rows if r.get("normalized_score") is not None]
    if not rows:
        return None
    key = lambda r: score_of(r)[0]
    return max(rows, key=key) if mode != "min" else min(rows, key=key)


def fmt_score(row: dict[str, Any] | None) -> str:
    s = score_of(row) if row else None
    if s is None:
        return "no score yet"
    value, kind = s
    return f"score {value:.1f}" if kind == "score" else f"return {value:,.1f}"


def fmt_budget(node: dict[str, Any]) -> str:
    return f"{int(node['budget_value']):,} {UNIT_NAMES.get(node['budget_unit'], node['budget_unit'])}"


def fmt_position(ck: dict[str, Any], node: dict[str, Any]) -> str:
    """Where a checkpoint sits on its node's axis, with the share of the node's budget."""
    x = ck.get(node["axis"])
    if x is None:
        return f"iteration {ck.get('iteration')}"
    text = f"{int(x):,} {UNIT_SHORT.get(AXIS_UNITS.get(node['axis'], ''), node['axis'])}"
    if node["budget_value"]:
        text += f" ({100 * x / node['budget_value']:.0f}%)"
    return text


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "?"


def _first_line(text: str, n: int = 120) -> str:
    line = text.strip().splitlines()[0] if text and text.strip() else ""
    return line if len(line) <= n else line[: n - 1] + "…"


def node_line(lin: Lineage, n: dict[str, Any]) -> str:
    parts = [f"{n['node_id']} — phase {n['phase']}", f"{n['algorithm']} ({n['paradigm']})", fmt_budget(n), n["status"],
             "best " + fmt_score(lin.best.get(n["node_id"]))]
    edges = lin.parent_edges(n)
    if len(edges) > 1:  # an ensemble: every member's checkpoint
        parts.append("from " + ", ".join(f"{e['checkpoint_id']} ({e['label'] or 'member ' + str(e['member'])})"
                                         + ("" if e["checkpoint_id"] in lin.checkpoints else " (outside this run)") for e in edges))
    elif n["parent_checkpoint_id"]:
        outside = "" if n["parent_checkpoint_id"] in lin.checkpoints else " (outside this run)"
        parts.append(f"from {n['parent_checkpoint_id']}{outside}")
    if n["branch"]:
        parts.append(f"branch {n['branch']}")
    return " · ".join(parts)


def node_details(lin: Lineage, n: dict[str, Any]) -> list[str]:
    trials = lin.trials.get(n["node_id"], [])
    seeds = sorted({t["seed"] for t in trials if t["seed"] is not None})
    labels = sorted({t["sweep_label"] for t in trials if t["sweep_label"]})
    failed = sum(t["status"] in ("failed", "error", "ERROR") for t in trials)
    text = f"trials: {len(trials)}"
    if seeds:
        text += f" (seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))})"
    if labels:
        text += f" · sweep: {', '.join(labels)}" if len(labels) <= 6 else f" · {len(labels)} sweep/search points"
    if failed:
        text += f" · {failed} failed"
    stopped = sum(t["status"] == "stopped" for t in trials)  # ended before the budget: early stopping, a stop rule
    if stopped:
        text += f" · {stopped} stopped early"
    n_videos = sum(len(lin.videos.get(c["checkpoint_id"], [])) for c in lin.checkpoints.values() if c["node_id"] == n["node_id"])
    lines = [f"{text} · videos: {n_videos}"]
    if n["error"]:
        lines.append(f"error: {_first_line(n['error'])}")
    tr = lin.transfers.get(n["node_id"])
    if tr:
        lines.append(f"transfer → {tr['target_algorithm']}: {_first_line(tr['summary'] or 'no summary')}")
    for d in lin.datasets.get(n["phase"], []):
        source = json.loads(d["source_json"] or "{}")
        held = f" · held out: {d['held_out_dataset']}" if d["held_out_dataset"] else ""
        lines.append(f"dataset {d['dataset_id']}: {d['transitions'] or 0:,} transitions, {d['episodes'] or 0} episodes "
                     f"from the experience of {source.get('from', '?')} ({d['take']}){held}")
    sel = lin.selections.get(n["phase"])
    if sel:
        lines.append(selection_line(sel))
    lines += regime_lines(n)
    lines.append(context_line(lin, n))
    return lines


def regime_lines(n: dict[str, Any]) -> list[str]:
    """The regime diagnosis at the node's start and, with `regime: auto`, what it applied:
    `regime Superior: J(π0) 52.9 ± 2.7 vs J(π_D) 9.1 ± 0.9 (…) → pi0_centric`."""
    if not n.get("regime_json"):
        return []
    r = json.loads(n["regime_json"])
    d = r["diagnosis"]
    j0, jd = d["j_pi0"], d["j_data"]
    h0, hd = (j0["high"] - j0["low"]) / 2, (jd["high"] - jd["low"]) / 2
    spent = f"{r['env_steps']:,} env steps" + (", charged" if r.get("charged") else "")
    lines = [(f"regime {r['regime']}: J(π0) {j0['mean']:.1f} ± {h0:.1f} (n {j0['n']}) vs J(π_D) {jd['mean']:.1f} ± {hd:.1f} (n {jd['n']}), "
              f"δ {d['margin_return']:.1f} return → {r['family']} ({r['episodes']} episodes of {r.get('checkpoint_id') or 'π0'}, {spent}; "
              f"data {r['dataset']})")]
    iv = r.get("intervention")
    if iv:
        settings = ", ".join(f"{k}={v}" for k, v in iv["applied"].items()) or "nothing"
        kept = f"; written in the phase, kept: {', '.join(f'{k}={v}' for k, v in iv['written'].items())}" if iv["written"] else ""
        lines.append(f"{iv['why']} · settings: {settings}{kept}")
    return lines


def selection_line(sel: dict[str, Any]) -> str:
    """`start chosen by online validation (…): ck-… over ck-… 12.3, ck-… 45.6`."""
    scores = json.loads(sel["scores_json"] or "[]")
    ranked = ", ".join(f"{c['checkpoint_id']} {c.get('kind', '')} {c['score']:.1f}" if c.get("score") is not None
                       else f"{c['checkpoint_id']} {c.get('kind', '')} (unscored)" for c in scores)
    spent = f", {sel['env_steps']:,} env steps" if sel["env_steps"] else ""
    return f"start chosen by {sel['validation']} validation{spent}: {sel['chosen_checkpoint_id']} of {ranked}"


def context_line(lin: Lineage, n: dict[str, Any]) -> str:
    """The deployment context: `env Hopper-v5`, or a variant with its changes; `sim → real` when
    the node runs in another context than the phase run that seeded it."""
    from mprl.envs import describe_env, variant_of

    env = n["env"]
    text = f"env {env}" + (f" ({describe_env(env)})" if variant_of(env) else "")
    parent = next((p for p in lin.nodes if p["node_id"] == lin.parent_node(n)), None)
    if parent is not None and parent["env"] != env:
        kind = "sim → real" if variant_of(env) and not variant_of(parent["env"]) else "context change"
        text += f"; {kind}: from {parent['env']}"
    return text


def checkpoint_line(lin: Lineage, ck: dict[str, Any], node: dict[str, Any]) -> str:
    seed = next((t["seed"] for t in lin.trials.get(node["node_id"], []) if t["trial_id"] == ck["trial_id"]), None)
    parts = [f"◆ {ck['checkpoint_id']}", fmt_position(ck, node), fmt_score(ck)]
    parts.append(f"seed {seed}" if seed is not None else f"trial {ck['trial_id']}")
    parts.append(f"selected: {ck['selection']}" if ck["selected"] else "not selected")
    n_videos = len(lin.videos.get(ck["checkpoint_id"], []))
    if n_videos:
        parts.append(f"{n_videos} video{'s' * (n_videos != 1)}")
    return " · ".join(parts)


def tree_text(store: LineageStore) -> str:
    """The run as an indented tree: node → its selected checkpoints → the nodes they seeded."""
    lin = load(store)
    run = lin.run
    n_sel = sum(bool(c["selected"]) for c in lin.checkpoints.values())
    n_vid = sum(map(len, lin.videos.values()))
    lines = [
        (f"run {run['run_id']} ({run['name']}) · {run['status']} · {len(lin.nodes)} phase runs · "
         f"{len(lin.checkpoints)} checkpoints, {n_sel} selected · {n_vid} videos"),
        f"  created {_when(run['created_at'])} · updated {_when(run['updated_at'])} · code {run['code_version'] or '?'}",
    ]
    if run["error"]:
        lines.append(f"  error: {_first_line(run['error'])}")
    lines += [f"  {SCORE_LEGEND}", ""]

    seen: set[str] = set()

    def block(n: dict[str, Any], prefix: str) -> None:
        seen.add(n["node_id"])
        cks = lin.shown_checkpoints(n["node_id"])
        bar = "│   " if cks else "    "
        lines.extend(prefix + bar + d for d in node_details(lin, n))
        for i, ck in enumerate(cks):
            last = i == len(cks) - 1
            lines.append(prefix + ("└── " if last else "├── ") + checkpoint_line(lin, ck, n))
            sub = prefix + ("    " if last else "│   ")
            # drawn in full under its first parent (an ensemble's member 0), named under its other parents
            kids = [(k, k["parent_checkpoint_id"] == ck["checkpoint_id"]) for k in lin.seeded_by(ck["checkpoint_id"])]
            kids = [(k, full) for k, full in kids if not (full and k["node_id"] in seen)]  # a corrupt cycle ends here
            for j, (kid, full) in enumerate(kids):
                klast = j == len(kids) - 1
                if not full:
                    e = next(e for e in lin.parent_edges(kid) if e["checkpoint_id"] == ck["checkpoint_id"])
                    lines.append(sub + ("└── " if klast else "├── ") + f"↳ {kid['node_id']} (phase {kid['phase']}) · "
                                 f"{e['label'] or 'member ' + str(e['member'])} ← this checkpoint · shown in full under {kid['parent_checkpoint_id']}")
                    continue
                lines.append(sub + ("└── " if klast else "├── ") + node_line(lin, kid))
                block(kid, sub + ("    " if klast else "│   "))

    for root in lin.roots():
        lines.append(node_line(lin, root))
        block(root, "")
    for n in lin.nodes:  # only a cycle in the records leaves a node unreached: show it rather than hide it
        if n["node_id"] not in seen:
            lines.append(node_line(lin, n) + " · (seeding chain is a cycle)")
            block(n, "")
    return "\n".join(lines).rstrip() + "\n"


# ---- JSON


def _parsed(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its `*_json` columns decoded under the name without the suffix."""
    out = {}
    for k, v in row.items():
        if k.endswith("_json"):
            out[k[: -len("_json")]] = json.loads(v) if v else None
        else:
            out[k] = v
    return out


def _env_context(env: str) -> dict[str, Any]:
    from mprl.envs import env_context

    return env_context(env)


def export_json(store: LineageStore, metrics: bool = False) -> dict[str, Any]:
    """Every record of the run, JSON columns decoded; per-iteration metrics only when asked (they are large)."""
    lin = load(store)
    nodes = []
    for n in lin.nodes:
        d = _parsed(n)
        d["parent_node"] = lin.parent_node(n)
        d["parents"] = [{"checkpoint_id": e["checkpoint_id"], "member": e["member"], "label": e["label"],
                         "node_id": (lin.checkpoints.get(e["checkpoint_id"]) or {}).get("node_id")} for e in lin.parent_edges(n)]
        d["env_context"] = _env_context(n["env"])
        best = lin.best.get(n["node_id"])
        s = score_of(best) if best else None
        d["best"] = {"value": s[0], "kind": "normalized_score" if s[1] == "score" else "evaluation_return",
                     "checkpoint_id": best.get("checkpoint_id"), "trial_id": best.get("trial_id")} if s else None
        nodes.append(d)
    out: dict[str, Any] = {
        "format": "mprl-lineage",
        "version": 1,
        "run": {**_parsed(lin.run), "run_dir": str(store.run_dir)},
        "nodes": nodes,
        "trials": [_parsed(t) for ts in lin.trials.values() for t in ts],
        "checkpoints": [_parsed(c) for c in lin.checkpoints.values()],
        "transfers": [_parsed(t) for t in lin.transfers.values()],
        "videos": [v for vs in lin.videos.values() for v in vs],
        "datasets": [_parsed(d) for ds in lin.datasets.values() for d in ds],
        "selections": [_parsed(s) for s in lin.selections.values()],
    }
    if metrics:
        out["metrics"] = [_parsed(m) for m in store.metrics()]
    return out


# ---- DOT

PARADIGM_COLOURS = {"offline": "#cfe2f3", "online": "#fce5cd", "hybrid": "#e6d5f0"}


def _q(text: str) -> str:
    """A DOT quoted string; a newline becomes DOT's centred line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**kw: str) -> str:
    return "[" + ", ".join(f"{k}={_q(v)}" for k, v in kw.items()) + "]"


def export_dot(store: LineageStore) -> str:
    """Graphviz DOT: phase runs (boxes) → selected checkpoints (ellipses) → the phase runs they seeded."""
    lin = load(store)
    run = lin.run
    out = [
        f"digraph {_q('lineage ' + run['run_id'])} {{",
        "  rankdir=LR;",
        f"  label={_q('run ' + run['run_id'] + ' · ' + run['status'])}; labelloc=t; fontname=Helvetica;",
        '  node [fontname=Helvetica, fontsize=10]; edge [fontname=Helvetica, fontsize=9];',
    ]
    for n in lin.nodes:
        label = "\n".join([n["node_id"] + (f" (phase {n['phase']})" if n["phase"] != n["node_id"] else ""),
                           f"{n['algorithm']} · {n['paradigm']}", n["env"], fmt_budget(n),
                           f"{n['status']} · best {fmt_score(lin.best.get(n['node_id']))}"])
        colour = "#cc0000" if n["status"] == "failed" else "#444444"
        out.append(f"  {_q('node:' + n['node_id'])} " + _attrs(
            label=label, shape="box", style="rounded,filled", fillcolor=PARADIGM_COLOURS.get(n["paradigm"], "#eeeeee"), color=colour))
    for n in lin.nodes:
        for ck in lin.shown_checkpoints(n["node_id"]):
            cid = ck["checkpoint_id"]
            label = "\n".join([cid, fmt_position(ck, n), fmt_score(ck)] + ([ck["selection"]] if ck["selection"] else []))
            out.append(f"  {_q('ck:' + cid)} " + _attrs(label=label, shape="ellipse", style="filled", fillcolor="#fff2cc"))
            out.append(f"  {_q('node:' + n['node_id'])} -> {_q('ck:' + cid)} " + _attrs(label="selected" if ck["selected"] else "seed"))
    outside: set[str] = set()
    for n in lin.nodes:
        edges = lin.parent_edges(n)
        for e in edges:  # one edge per parent: an ensemble's K members, each labelled with its index
            pid = e["checkpoint_id"]
            if pid not in lin.checkpoints and pid not in outside:  # seeded from outside the run: draw where from
                outside.add(pid)
                out.append(f"  {_q('ck:' + pid)} " + _attrs(label=f"{pid}\n(outside this run)", shape="ellipse", style="dashed"))
            tr = lin.transfers.get(n["node_id"])
            label = f"init → {n['algorithm']}" + (f"\n{e['label'] or 'member ' + str(e['member'])}" if len(edges) > 1 else "")
            edge = {"label": label + (f"\n{_first_line(tr['summary'], 60)}" if tr and tr["summary"] and len(edges) == 1 else "")}
            out.append(f"  {_q('ck:' + pid)} -> {_q('node:' + n['node_id'])} " + _attrs(**edge))
    out.append("}")
    return "\n".join(out) + "\n"
