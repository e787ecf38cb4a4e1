"""`mprl curves`: a run's learning curves as a PNG and a self-contained HTML page.

Both draw `curve_data` (the JSON the Serve page draws too): one panel per axis — environment
steps for online and hybrid phases, gradient updates for offline ones — with each phase run
placed after its ancestor on the same axis, the mean over seeds and a min–max band, dashed
lines where a phase run starts, dotted OPT stage marks, and the selected checkpoints. The HTML
is inline SVG with native hover tooltips (checkpoint ids) and the data embedded as JSON: it
opens from disk with no network, which is where runs are inspected (clusters, laptops offline).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mprl.analysis import _aggregate_curves, _figure
from mprl.lineage.curves import curve_data
from mprl.lineage.store import LineageError, LineageStore

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
METRIC_LABELS = {"normalized_score": "normalized score", "evaluation_return": "evaluation return"}
_Y = {"evaluation_return": 1, "normalized_score": 2}  # index of the metric in a curve_data point [x, return, score]


@dataclass
class Series:
    """The mean (and min–max band) over the seeds of one node, or of one sweep point in it."""

    node: dict[str, Any]
    label: str
    colour: str
    x: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: int


def panel_metric(panel: dict[str, Any]) -> str:
    """Normalized score when every evaluated point has one (the env has reference scores), else the return."""
    points = [p for n in panel["nodes"] for t in n["trials"] for p in t["points"] if p[1] is not None or p[2] is not None]
    return "normalized_score" if points and all(p[2] is not None for p in points) else "evaluation_return"


def _env_label(panel: dict[str, Any], node: dict[str, Any]) -> str:
    """` · on mprl/Hopper-real-v0` when the panel's phase runs do not all run in one environment."""
    envs = {n.get("env") for n in panel["nodes"]}
    return f" · on {node['env']}" if len(envs) > 1 and node.get("env") else ""


def panel_series(panel: dict[str, Any], metric: str, colours: dict[str, str]) -> list[Series]:
    out = []
    for node in panel["nodes"]:
        groups: dict[str | None, list[list[tuple[float, float]]]] = {}
        for t in node["trials"]:
            pts = [(p[0], p[_Y[metric]]) for p in t["points"] if p[_Y[metric]] is not None]
            if pts:
                groups.setdefault(t["sweep_label"], []).append(pts)
        for label, curves in sorted(groups.items(), key=lambda kv: kv[0] or ""):
            agg = _aggregate_curves(curves)
            if agg is None:
                continue
            grid, mean, _std, lo, hi, _count, n = agg
            key = node["node_id"] + (f" [{label}]" if label else "")
            colour = colours.setdefault(key, PALETTE[len(colours) % len(PALETTE)])
            out.append(Series(node, f"{key} · {node['algorithm']}{_env_label(panel, node)} (n={n})", colour, grid, mean, lo, hi, n))
    return out


def boundaries(panel: dict[str, Any]) -> list[tuple[float, str]]:
    """(x, label) where phase runs start after an ancestor on this axis; runs starting together share a line."""
    at: dict[float, list[str]] = {}
    for n in panel["nodes"]:
        if n["offset"] > 0:
            at.setdefault(float(n["offset"]), []).append(f"{n['node_id']} ({n['algorithm']})")
    return [(x, ", ".join(names)) for x, names in sorted(at.items())]


def stage_marks(panel: dict[str, Any]) -> list[tuple[float, str]]:
    return [(float(x), f"{n['node_id']}: {name}") for n in panel["nodes"] for x, name in n["stages"]]


def _checkpoint_y(ck: dict[str, Any], metric: str) -> float | None:
    return ck.get(metric)


def _seed_of(node: dict[str, Any], trial_id: str) -> Any:
    return next((t["seed"] for t in node["trials"] if t["trial_id"] == trial_id), None)


def write_curves(store: LineageStore, out_dir: str | Path) -> dict[str, Path]:
    """Write curves.png, curves.html and curves.json (the data) into `out_dir`; returns their paths."""
    data = curve_data(store)
    run_id = data["run"]["run_id"]
    colours: dict[str, str] = {}
    panels = []
    for panel in data["panels"]:
        metric = panel_metric(panel)
        panels.append((panel, metric, panel_series(panel, metric, colours)))
    if not any(series for _, _, series in panels):
        raise LineageError(f"Run {run_id} has no evaluated iterations in its lineage yet: no learning curve to draw.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"png": out / "curves.png", "html": out / "curves.html", "json": out / "curves.json"}
    _write_png(data, panels, paths["png"])
    paths["html"].write_text(_html(data, panels, store), encoding="utf-8")
    paths["json"].write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    return paths


# ---- PNG


def readable_y(ax: Any, values: Sequence[float]) -> None:
    """Tick labels as plain numbers (no '+3.71e1' offset that turns a 1e-4 wiggle into a cliff),
    and a y range at least 5% of the values' magnitude (1 around 0): a flat series looks flat."""
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ys = [float(v) for v in values if np.isfinite(v)]
    if not ys:
        return
    lo, hi = min(ys), max(ys)
    need = 0.05 * max(abs(lo), abs(hi)) or 1.0
    if hi - lo < need:
        mid = (lo + hi) / 2
        ax.set_ylim(mid - need / 2, mid + need / 2)


def separate_labels(fig: Any, labels: Sequence[Any], step: float = 8.0, tries: int = 12) -> None:
    """Move checkpoint labels above or below their star (in points, a thin leader line back to
    it) until none overlaps another and each stays inside its axes: selected checkpoints close on
    the curve otherwise print over each other."""
    if len(labels) < 2:
        return
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    from matplotlib.transforms import Bbox

    extent = lambda t: Text.get_window_extent(t, renderer)  # the text alone, not its leader line
    r = 6 * fig.dpi / 72  # a star's radius (s=110) in pixels: labels keep off every star too
    stars = [label.axes.transData.transform(label.xy) for label in labels]
    placed: list[Any] = [Bbox([[x - r, y - r], [x + r, y + r]]) for x, y in stars]
    for label in sorted(labels, key=lambda t: extent(t).x0):
        dx, dy0 = label.xyann
        inside = label.axes.get_window_extent(renderer)
        below = dy0 - 2 * step  # under the star, clear of it
        for dy in [dy0, *(v for i in range(1, tries + 1) for v in (dy0 + i * step, below - (i - 1) * step))]:
            label.xyann = (dx, dy)
            box = extent(label)
            if box.y0 >= inside.y0 and box.y1 <= inside.y1 and not any(box.overlaps(other) for other in placed):
                break
        else:
            label.xyann = (dx, dy0)
        placed.append(extent(label))


def curves_figure(data: dict[str, Any], panels: Sequence[tuple[dict, str, list[Series]]]) -> Any:
    """The PNG's matplotlib figure: one axes per panel, y axes readable, checkpoint labels apart."""
    fig = _figure(9.0, 3.6 * len(panels) + 0.4)
    labels: list[Any] = []
    for i, (panel, metric, series) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        for s in series:
            ax.plot(s.x, s.mean, color=s.colour, lw=1.6, label=s.label)
            if s.n > 1:
                ax.fill_between(s.x, s.lo, s.hi, color=s.colour, alpha=0.2, linewidth=0)
        colour_of = {s.node["node_id"]: s.colour for s in series}
        top = ax.get_xaxis_transform()  # x in data, y in axes fraction: labels sit at the top whatever the scores
        for x, label in boundaries(panel):
            ax.axvline(x, color="0.3", linestyle="--", linewidth=1.0, zorder=0)
            ax.text(x, 0.98, f" {label}", transform=top, rotation=90, va="top", ha="left", fontsize=7, color="0.25")
        for x, label in stage_marks(panel):
            ax.axvline(x, color="0.45", linestyle=":", linewidth=1.0, zorder=0)
            ax.text(x, 0.02, f" {label}", transform=top, rotation=90, va="bottom", ha="left", fontsize=6, color="0.35")
        for node in panel["nodes"]:
            for ck in node["checkpoints"]:
                y = _checkpoint_y(ck, metric)
                if ck["selected"] and y is not None:
                    ax.scatter([ck["x"]], [y], marker="*", s=110, color=colour_of.get(node["node_id"], "0.2"),
                               edgecolors="black", linewidths=0.6, zorder=5)
                    labels.append(ax.annotate(ck["checkpoint_id"], (ck["x"], y), textcoords="offset points", xytext=(-5, 5), ha="right",
                                              fontsize=6, arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.4, "shrinkA": 0, "shrinkB": 3}))
        if series and min(float(s.x.min()) for s in series) >= 0:
            ax.set_xlim(left=0)  # a phase's axis starts at 0 (or at its ancestor's end), not at its first evaluation
        readable_y(ax, [v for s in series for arr in (s.lo, s.hi, s.mean) for v in arr]
                   + [y for n in panel["nodes"] for ck in n["checkpoints"] if ck["selected"] and (y := _checkpoint_y(ck, metric)) is not None])
        if not series:
            ax.text(0.5, 0.5, "no evaluated iterations yet", transform=ax.transAxes, ha="center", color="0.4")
        paradigms = sorted({n["paradigm"] for n in panel["nodes"]})
        ax.set_title(f"{' / '.join(paradigms)} phases — {panel['label']}  (mean, band: min–max across seeds; ★ selected checkpoints)", fontsize=9)
        ax.set_xlabel(panel["label"])
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.suptitle(f"run {data['run']['run_id']} ({data['run']['status']})", fontsize=10)
    fig.tight_layout()
    separate_labels(fig, labels)
    return fig


def _write_png(data: dict[str, Any], panels: Sequence[tuple[dict, str, list[Series]]], path: Path) -> None:
    curves_figure(data, panels).savefig(path, bbox_inches="tight")


# ---- HTML (inline SVG)

W, H = 900, 360
M = {"left": 70, "right": 20, "top": 30, "bottom": 48}


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 × 10^k steps) covering [lo, hi]."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def fmt_tick(v: float) -> str:
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _svg_panel(panel: dict[str, Any], metric: str, series: list[Series]) -> str:
    cks = [(node, ck) for node in panel["nodes"] for ck in node["checkpoints"] if _checkpoint_y(ck, metric) is not None]
    xs = [0.0] + [float(v) for s in series for v in s.x] + [float(ck["x"]) for _, ck in cks] + [float(n["end"]) for n in panel["nodes"]]
    ys = [float(v) for s in series for arr in (s.lo, s.hi, s.mean) for v in arr if np.isfinite(v)]
    ys += [float(_checkpoint_y(ck, metric)) for _, ck in cks]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1.0
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    need = 0.05 * max(abs(y0), abs(y1)) or 1.0  # as the PNG (readable_y): a flat series looks flat
    if y1 - y0 < need:
        y0, y1 = (y0 + y1 - need) / 2, (y0 + y1 + need) / 2
    pad = 0.06 * (y1 - y0 or 1.0)
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = W - M["left"] - M["right"], H - M["top"] - M["bottom"]
    sx = lambda v: M["left"] + (float(v) - x0) / (x1 - x0) * pw
    sy = lambda v: M["top"] + (y1 - float(v)) / (y1 - y0) * ph
    pts = lambda x, y: " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x, y) if np.isfinite(b))

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
            f'aria-label="{_e(panel["label"])}" data-axis="{_e(panel["axis"])}">'),
           f'<rect x="{M["left"]}" y="{M["top"]}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>']
    for t in nice_ticks(x0, x1):
        out.append(f'<line class="grid" x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{M["top"]}" y2="{M["top"] + ph}"/>'
                   f'<text x="{sx(t):.1f}" y="{M["top"] + ph + 16}" text-anchor="middle">{fmt_tick(t)}</text>')
    for t in nice_ticks(y0, y1):
        out.append(f'<line class="grid" x1="{M["left"]}" x2="{M["left"] + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}"/>'
                   f'<text x="{M["left"] - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{fmt_tick(t)}</text>')
    out.append(f'<text x="{M["left"] + pw / 2}" y="{H - 8}" text-anchor="middle" class="axis">{_e(panel["label"])}</text>'
               f'<text transform="translate(16 {M["top"] + ph / 2}) rotate(-90)" text-anchor="middle" class="axis">{_e(METRIC_LABELS[metric])}</text>')
    for s in series:
        ok = np.isfinite(s.lo) & np.isfinite(s.hi)
        band = pts(s.x[ok], s.hi[ok]) + " " + pts(s.x[ok][::-1], s.lo[ok][::-1])
        out.append(f'<g class="series"><title>{_e(s.label)}: mean over seeds, band min–max</title>'
                   + (f'<polygon points="{band}" fill="{s.colour}" fill-opacity="0.18" stroke="none"/>' if s.n > 1 else "")
                   + f'<polyline points="{pts(s.x, s.mean)}" fill="none" stroke="{s.colour}" stroke-width="2"/></g>')
    for x, label in boundaries(panel):
        out.append(f'<g class="boundary"><title>phase run starts: {_e(label)}</title><line x1="{sx(x):.1f}" x2="{sx(x):.1f}" '
                   f'y1="{M["top"]}" y2="{M["top"] + ph}" stroke="#444" stroke-dasharray="6 4"/>'
                   f'<text transform="translate({sx(x) + 7:.1f} {M["top"] + 4}) rotate(90)" class="mark">{_e(label)}</text></g>')
    for x, label in stage_marks(panel):
        out.append(f'<g class="stage"><title>{_e(label)}</title><line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{M["top"]}" '
                   f'y2="{M["top"] + ph}" stroke="#777" stroke-dasharray="2 3"/>'
                   f'<text transform="translate({sx(x) - 3:.1f} {M["top"] + ph - 4}) rotate(-90)" class="mark">{_e(label)}</text></g>')
    colour_of = {s.node["node_id"]: s.colour for s in series}
    for node, ck in sorted(cks, key=lambda nc: nc[1]["selected"]):  # selected ones drawn last, on top
        y = _checkpoint_y(ck, metric)
        tip = [ck["checkpoint_id"], f"{node['node_id']} · {node['algorithm']} · seed {_seed_of(node, ck['trial_id'])}",
               f"{fmt_tick(ck['x'])} {panel['label']} · {METRIC_LABELS[metric]} {y:.2f}"]
        if ck["selected"]:
            tip.append(f"selected: {ck['selection']}")
        if ck["videos"]:
            tip.append("videos: " + ", ".join(ck["videos"]))
        colour = colour_of.get(node["node_id"], "#333")
        r, fill, cls = (6, colour, "ck selected") if ck["selected"] else (3, "#fff", "ck")
        out.append(f'<circle class="{cls}" data-checkpoint="{_e(ck["checkpoint_id"])}" cx="{sx(ck["x"]):.1f}" cy="{sy(y):.1f}" '
                   f'r="{r}" fill="{fill}" stroke="{colour if not ck["selected"] else "#000"}"><title>{_e(chr(10).join(tip))}</title></circle>')
    out.append("</svg>")
    legend = "".join(f'<li><span class="swatch" style="background:{s.colour}"></span>{_e(s.label)}</li>' for s in series)
    return "\n".join(out) + f'\n<ul class="legend">{legend}</ul>'


CSS = """body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222}h1{font-size:18px}h2{font-size:15px;margin-top:28px}
svg text{font-size:11px;fill:#333}svg .axis{font-size:12px}svg .mark{font-size:10px;fill:#444}svg .grid{stroke:#eee}
svg .ck{cursor:pointer}svg .ck:hover{stroke-width:3}.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:14px;font-size:12px}
.swatch{display:inline-block;width:14px;height:4px;margin-right:5px;vertical-align:middle}pre{font-size:11px;background:#f6f6f6;padding:10px;overflow-x:auto}
.note{font-size:12px;color:#555}"""


def _html(data: dict[str, Any], panels: Sequence[tuple[dict, str, list[Series]]], store: LineageStore) -> str:
    from mprl.lineage.render import tree_text

    run = data["run"]
    body = []
    for panel, metric, series in panels:
        paradigms = " / ".join(sorted({n["paradigm"] for n in panel["nodes"]}))
        body.append(f"<h2>{_e(paradigms)} phases — {_e(panel['label'])}</h2>\n{_svg_panel(panel, metric, series)}")
    blob = json.dumps(data, default=str).replace("</", "<\\/")  # a "</script>" inside a label must not end the block
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mprl curves · {_e(run['run_id'])}</title><style>{CSS}</style></head>
<body>
<h1>Learning curves · run {_e(run['run_id'])} ({_e(run['status'])})</h1>
<p class="note">Mean over seeds with a min–max band. Dashed lines: a phase run starts where its ancestor on the same axis
ended; dotted lines: OPT stages. Large dots: selected checkpoints. Hover a dot for its checkpoint id.</p>
{chr(10).join(body)}
<h2>Lineage</h2>
<pre>{_e(tree_text(store))}</pre>
<script type="application/json" id="mprl-curve-data">{blob}</script>
</body></html>
"""
