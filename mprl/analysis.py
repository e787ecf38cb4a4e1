"""Result tables and plots for sweeps: one row per sweep point, statistics across seeds.

A *sweep point* is a group of runs that differ only by seed (e.g. one κ schedule of OPT, one
transition point, one ``n_tau``). For each point, :func:`summarize` takes the FINAL normalised
score of every seed and reports:

``mean``
    The sample mean across seeds.
``ci_low``, ``ci_high``
    A 95% **stratified-bootstrap percentile** confidence interval for the mean, as rliable
    (Agarwal et al. 2021) computes it: resample the seeds with replacement ``n_boot`` times
    (default 2000, seeded and therefore reproducible), take the mean of each resample, and report
    the 2.5th and 97.5th percentiles of those means. With one task per point, rliable's
    stratification (resampling runs within each task) is exactly this i.i.d. resampling of
    seeds. This is the interval the tables and plots show. With ``n == 1`` it degenerates to
    ``[x, x]``.
``t_low``, ``t_high``
    The classical Student-t interval ``mean ± t(0.975, n-1) · s / √n`` (``[x, x]`` for
    ``n == 1``), kept in the CSV for comparison. It is wider than the bootstrap interval for a
    handful of seeds, since the percentile bootstrap underestimates spread with small n.
``iqm``
    The interquartile mean exactly as rliable's ``metrics.aggregate_iqm`` defines it:
    ``scipy.stats.trim_mean(scores, proportiontocut=0.25, axis=None)``. That is: sort the n
    scores, drop ``g = floor(0.25 · n)`` of them from EACH end, and average the rest — no
    fractional weighting of the boundary scores. Hence n = 1, 2, 3 give the plain mean, n = 4
    averages the middle 2, n = 5 the middle 3, n = 10 the middle 6. (The paper describes the
    IQM as "the mean of the middle 50% of runs"; when n is not a multiple of 4 rliable keeps
    slightly more than 50%. We follow rliable so numbers match it.) The fractionally weighted
    variant, which keeps exactly 50% of the mass, is available as :func:`iqm_fractional` but
    is not what the tables show.
``std``
    The sample standard deviation (ddof = 1; 0.0 for n = 1).

Tune experiment folders are read directly from disk (:func:`final_scores_from_tune`,
:func:`curves_from_tune`): each trial directory holds ``params.json`` (the trial config) and
``result.json`` (one JSON object per reported iteration) — the file names of
``ray.air.constants.EXPR_PARAM_FILE`` / ``EXPR_RESULT_FILE``. No Ray session is needed.

Plots use matplotlib's Agg canvas directly (no pyplot, no global backend switch).
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mprl.errors import MprlError

PARAMS_FILE = "params.json"  # ray.air.constants.EXPR_PARAM_FILE
RESULT_FILE = "result.json"  # ray.air.constants.EXPR_RESULT_FILE

__all__ = [
    "PointSummary",
    "iqm",
    "iqm_fractional",
    "bootstrap_ci",
    "t_interval",
    "summarize",
    "to_markdown",
    "to_csv",
    "plot_points",
    "plot_curves",
    "final_scores_from_tune",
    "curves_from_tune",
    "write_report",
    "plot_search",
]


# ---------------------------------------------------------------------------------------------
# Statistics


def _as_scores(scores: Sequence[float]) -> np.ndarray:
    x = np.asarray(list(scores), dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no scores: a sweep point needs at least one seed")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"scores must be finite, got {x.tolist()}")
    return x


def iqm(scores: Sequence[float]) -> float:
    """Interquartile mean as rliable computes it: ``scipy.stats.trim_mean(x, 0.25, axis=None)``.

    Sort, drop ``floor(0.25 * n)`` scores from each end, average the rest (no fractional
    weighting). Implemented in numpy with the identical formula so scipy is not required.
    """
    x = np.sort(_as_scores(scores))
    g = int(0.25 * x.size)
    return float(np.mean(x[g : x.size - g]))


def iqm_fractional(scores: Sequence[float]) -> float:
    """The 25%-trimmed mean with fractional weighting of the boundary scores (for reference).

    Keeps exactly the middle 50% of the empirical distribution: with ``c = 0.25 * n`` and
    ``g = floor(c)``, the ``g`` lowest and highest scores get weight 0, the next one at each
    end weight ``1 - (c - g)``, the rest weight 1; the result is the weighted mean. Equals
    :func:`iqm` when n is a multiple of 4. NOT what rliable or our tables report.
    """
    x = np.sort(_as_scores(scores))
    n = x.size
    c = 0.25 * n
    g = int(math.floor(c))
    w = np.ones(n)
    w[:g] = 0.0
    w[n - g :] = 0.0
    if n - 2 * g >= 2 and c > g:
        w[g] = w[n - g - 1] = 1.0 - (c - g)
    return float(np.sum(w * x) / np.sum(w))


def bootstrap_ci(
    scores: Sequence[float],
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` (default: the mean) over seeds, like rliable.

    ``statistic`` maps an ``(n_boot, n)`` array of resamples to ``n_boot`` values (row-wise).
    Reproducible: the resamples come from ``numpy.random.default_rng(seed)``. ``[x, x]`` when
    there is one score.
    """
    x = _as_scores(scores)
    if x.size == 1:
        return float(x[0]), float(x[0])
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    samples = x[idx]
    stats = samples.mean(axis=1) if statistic is None else np.asarray(statistic(samples))
    alpha = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(stats, [alpha, 100.0 - alpha])
    return float(lo), float(hi)


def t_interval(scores: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval for the mean: ``mean ± t(1-α/2, n-1) · s/√n``; ``[x, x]`` for n = 1."""
    x = _as_scores(scores)
    m = float(x.mean())
    if x.size == 1:
        return m, m
    from scipy import stats  # scipy ships with ray[tune]/rllib

    half = float(stats.t.ppf(0.5 + confidence / 2.0, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return m - half, m + half


@dataclass
class PointSummary:
    """Statistics across seeds of the final score at one sweep point (see the module doc)."""

    point: str
    n: int
    mean: float
    ci_low: float  # 95% percentile-bootstrap CI of the mean (shown in tables and plots)
    ci_high: float
    iqm: float  # rliable IQM = scipy.stats.trim_mean(scores, 0.25)
    std: float  # sample std, ddof=1 (0 for n=1)
    scores: list[float]
    t_low: float = float("nan")  # 95% Student-t CI of the mean (CSV only)
    t_high: float = float("nan")


def summarize(
    scores_by_point: Mapping[str, Sequence[float]], *, n_boot: int = 2000, seed: int = 0
) -> list[PointSummary]:
    """One :class:`PointSummary` per point, in the mapping's order.

    Every point's bootstrap uses its own generator seeded with ``seed``, so a point's numbers
    do not depend on which other points are in the table.
    """
    rows = []
    for point, raw in scores_by_point.items():
        try:
            x = _as_scores(raw)
        except ValueError as e:
            raise ValueError(f"sweep point {point!r}: {e}") from None
        lo, hi = bootstrap_ci(x, n_boot=n_boot, seed=seed)
        t_lo, t_hi = t_interval(x)
        rows.append(
            PointSummary(
                point=str(point),
                n=int(x.size),
                mean=float(x.mean()),
                ci_low=lo,
                ci_high=hi,
                iqm=iqm(x),
                std=float(x.std(ddof=1)) if x.size > 1 else 0.0,
                scores=[float(v) for v in x],
                t_low=t_lo,
                t_high=t_hi,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Tables


def _fmt(v: float, digits: int) -> str:
    return "nan" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def to_markdown(rows: Sequence[PointSummary], title: str | None = None, *, digits: int = 2) -> str:
    """A GitHub table: point | n | mean | 95% CI (bootstrap) | IQM | std."""
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines.append("| point | n | mean | 95% CI (bootstrap) | IQM | std |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        point = str(r.point).replace("|", "\\|")
        ci = f"[{_fmt(r.ci_low, digits)}, {_fmt(r.ci_high, digits)}]"
        lines.append(
            f"| {point} | {r.n} | {_fmt(r.mean, digits)} | {ci} | {_fmt(r.iqm, digits)} | {_fmt(r.std, digits)} |"
        )
    lines.append("")
    lines.append(
        "Scores: final normalised score per seed. CI: 95% percentile bootstrap of the mean "
        "over seeds; IQM: 25% trimmed mean (rliable)."
    )
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ["point", "n", "mean", "ci_low", "ci_high", "iqm", "std", "t_low", "t_high", "scores"]


def to_csv(rows: Sequence[PointSummary], path: str | os.PathLike) -> None:
    """Write the rows as CSV (full precision); ``scores`` is the per-seed list joined by ';'."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            d = asdict(r)
            d["scores"] = ";".join(repr(float(s)) for s in r.scores)
            w.writerow([d[c] for c in CSV_COLUMNS])


# ---------------------------------------------------------------------------------------------
# Plots


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150)
    FigureCanvasAgg(fig)
    return fig


def plot_points(
    rows: Sequence[PointSummary],
    path: str | os.PathLike,
    *,
    title: str,
    ylabel: str = "normalised score",
) -> None:
    """PNG: mean with 95% bootstrap-CI error bars, IQM markers and the per-seed scores."""
    if not rows:
        raise ValueError("plot_points: no rows")
    n = len(rows)
    fig = _figure(max(6.5, 3.0 + 0.9 * n), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    xs = np.arange(n, dtype=float)
    means = np.array([r.mean for r in rows])
    lo = np.array([r.ci_low for r in rows])
    hi = np.array([r.ci_high for r in rows])
    yerr = np.vstack([np.maximum(means - lo, 0.0), np.maximum(hi - means, 0.0)])
    rng = np.random.default_rng(0)
    for i, r in enumerate(rows):
        jitter = rng.uniform(-0.12, 0.12, size=len(r.scores))
        ax.scatter(xs[i] + 0.25 + jitter * 0.5, r.scores, s=10, color="0.55", alpha=0.7, zorder=1,
                   label="seeds" if i == 0 else None)
    ax.errorbar(xs, means, yerr=yerr, fmt="o", color="C0", ecolor="C0", capsize=5, elinewidth=1.5,
                markersize=6, zorder=3, label="mean ± 95% CI (bootstrap)")
    ax.scatter(xs, [r.iqm for r in rows], marker="D", s=36, color="C3", zorder=4, label="IQM")
    ax.set_xticks(xs)
    labels = [r.point for r in rows]
    long = max(len(s) for s in labels) > 12 or n > 6
    ax.set_xticklabels(labels, rotation=30 if long else 0, ha="right" if long else "center", fontsize=8)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")


def _is_single_curve(value: Sequence) -> bool:
    first = value[0]
    return np.ndim(first) == 1 and len(first) == 2 and np.ndim(first[0]) == 0


def _aggregate_curves(curves: Sequence[Sequence[tuple[float, float]]]):
    """Union x grid; each seed interpolated inside its own x range (NaN outside)."""
    arrs = []
    for c in curves:
        a = np.asarray(c, dtype=np.float64).reshape(-1, 2)
        a = a[np.isfinite(a).all(axis=1)]
        if a.size:
            arrs.append(a[np.argsort(a[:, 0], kind="stable")])
    if not arrs:
        return None
    grid = np.unique(np.concatenate([a[:, 0] for a in arrs]))
    ys = np.full((len(arrs), grid.size), np.nan)
    for i, a in enumerate(arrs):
        inside = (grid >= a[0, 0]) & (grid <= a[-1, 0])
        ys[i, inside] = np.interp(grid[inside], a[:, 0], a[:, 1])
    count = np.sum(np.isfinite(ys), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(ys, axis=0)
        std = np.where(count > 1, np.nanstd(ys, axis=0, ddof=1) if len(arrs) > 1 else 0.0, 0.0)
        lo, hi = np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)
    return grid, mean, std, lo, hi, count, len(arrs)


def plot_curves(
    curves: Mapping[str, Sequence],
    path: str | os.PathLike,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    boundaries: Sequence[tuple[float, str]] = (),
    band: str = "std",
) -> None:
    """PNG: the mean curve of every point with a shaded band across seeds.

    ``curves[point]`` is either one curve — a sequence of ``(x, y)`` — or a list of per-seed
    curves. Seeds may report at different x: they are averaged on the union of their x values,
    each seed linearly interpolated within its own range only. ``band``: ``"std"`` (mean ± one
    sample std, default), ``"minmax"`` (range over seeds) or ``"ci"`` (mean ± 95% Student-t
    half-width). ``boundaries``: ``(x, label)`` pairs drawn as labelled vertical dashed lines,
    e.g. ``[(2e5, "online pre-training starts"), (4e5, "fine-tuning starts")]``.
    """
    if band not in ("std", "minmax", "ci"):
        raise ValueError(f"band must be 'std', 'minmax' or 'ci', got {band!r}")
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    for k, (point, value) in enumerate(curves.items()):
        if value is None or len(value) == 0:
            continue
        seeds = [value] if _is_single_curve(value) else list(value)
        agg = _aggregate_curves(seeds)
        if agg is None:
            continue
        grid, mean, std, mn, mx, count, n_seeds = agg
        color = f"C{k % 10}"
        ax.plot(grid, mean, color=color, lw=1.6, label=f"{point} (n={n_seeds})")
        if n_seeds > 1:
            if band == "std":
                lo, hi = mean - std, mean + std
            elif band == "minmax":
                lo, hi = mn, mx
            else:
                from scipy import stats

                tq = np.where(count > 1, stats.t.ppf(0.975, np.maximum(count - 1, 1)), 0.0)
                half = tq * std / np.sqrt(np.maximum(count, 1))
                lo, hi = mean - half, mean + half
            ax.fill_between(grid, lo, hi, color=color, alpha=0.2, linewidth=0)
        drawn += 1
    if not drawn:
        raise ValueError("plot_curves: no curve has any finite point")
    ymin, ymax = ax.get_ylim()
    for x, label in boundaries:
        ax.axvline(float(x), color="0.3", linestyle="--", linewidth=1.0, zorder=0)
        if label:
            ax.text(float(x), ymax, f" {label}", rotation=90, va="top", ha="right", fontsize=7, color="0.25")
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    band_name = {"std": "± 1 std", "minmax": "min–max", "ci": "95% t-CI"}[band]
    ax.set_title(f"{title}  (band: {band_name} across seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")


# ---------------------------------------------------------------------------------------------
# Tune experiment folders

_MISSING = object()


def _lookup(d: Any, key: str) -> Any:
    """``d[key]``; else a path split on '/' or '.' through nested dicts; else the unique nested
    leaf named ``key``. Returns ``_MISSING`` when absent; raises on an ambiguous leaf name."""
    if not isinstance(d, Mapping):
        return _MISSING
    if key in d:
        return d[key]
    for sep in ("/", "."):
        if sep in key:
            cur: Any = d
            for part in key.split(sep):
                if isinstance(cur, Mapping) and part in cur:
                    cur = cur[part]
                else:
                    break
            else:
                return cur
    found: list[Any] = []

    def walk(x: Any) -> None:
        if isinstance(x, Mapping):
            for k, v in x.items():
                if k == key:
                    found.append(v)
                else:
                    walk(v)

    walk(d)
    if len(found) > 1:
        raise MprlError(f"config key {key!r} is ambiguous (found {len(found)} nested keys of that name); "
                        f"give its full path, e.g. 'outer.{key}'")
    return found[0] if found else _MISSING


def _read_results(path: Path) -> list[dict]:
    out = []
    if not path.is_file():
        return out
    with path.open() as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # e.g. a line cut short by a crash while writing
            if isinstance(obj, dict):
                out.append(obj)
    return out


def _iter_trials(experiment_dir: str | os.PathLike) -> Iterator[tuple[Path, dict, list[dict]]]:
    root = Path(experiment_dir).expanduser()
    if not root.is_dir():
        raise MprlError(f"no Tune experiment folder at {root}")
    trial_dirs = sorted({p.parent for p in root.rglob(RESULT_FILE)} | {p.parent for p in root.rglob(PARAMS_FILE)})
    if not trial_dirs:
        raise MprlError(f"no trials under {root}: expected trial folders holding {PARAMS_FILE} and {RESULT_FILE}")
    for tdir in trial_dirs:
        results = _read_results(tdir / RESULT_FILE)
        config: Any = None
        pfile = tdir / PARAMS_FILE
        if pfile.is_file():
            try:
                config = json.loads(pfile.read_text())
            except json.JSONDecodeError:
                config = None
        if not isinstance(config, dict):  # fall back on the config Tune copies into each result
            config = next((r["config"] for r in reversed(results) if isinstance(r.get("config"), dict)), None)
        if config is None:
            warnings.warn(f"skipping {tdir}: no readable {PARAMS_FILE} and no config in {RESULT_FILE}")
            continue
        yield tdir, config, results


def _label_value(v: Any) -> str:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def _sort_key(values: tuple) -> tuple:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            out.append((1, 0.0, _label_value(v)))
        else:
            out.append((0, float(v), ""))
    return tuple(out)


def _group(experiment_dir, group_by: Sequence[str], take: Callable[[Path, list[dict]], Any]) -> dict[str, list]:
    if isinstance(group_by, str):
        group_by = [group_by]
    groups: dict[tuple, list] = {}
    labels: dict[tuple, str] = {}
    skipped = []
    for tdir, config, results in _iter_trials(experiment_dir):
        values = []
        for key in group_by:
            v = _lookup(config, key)
            if v is _MISSING:
                raise MprlError(f"trial {tdir.name}: config has no key {key!r} to group by "
                                f"(top-level keys: {sorted(config)})")
            values.append(v)
        item = take(tdir, results)
        if item is None:
            skipped.append(tdir.name)
            continue
        gkey = tuple(_label_value(v) for v in values)
        labels[gkey] = ", ".join(f"{k}={s}" for k, s in zip(group_by, gkey)) or "all"
        groups.setdefault(gkey, []).append((tuple(values), tdir.name, item))
    if skipped:
        warnings.warn(f"{len(skipped)} trial(s) reported no value of the metric and were left out: {skipped}")
    ordered = sorted(groups, key=lambda g: _sort_key(groups[g][0][0]))
    return {labels[g]: [item for _, _, item in sorted(groups[g], key=lambda t: t[1])] for g in ordered}


def _metric_value(result: dict, metric: str) -> float | None:
    if metric not in result:  # never find a metric inside the config Tune copies into results
        result = {k: v for k, v in result.items() if k != "config"}
    v = _lookup(result, metric)
    if v is _MISSING or v is None or isinstance(v, bool):
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def final_scores_from_tune(
    experiment_dir: str | os.PathLike,
    metric: str = "normalized_score",
    group_by: Sequence[str] = (),
) -> dict[str, list[float]]:
    """Final score of every trial of a Tune experiment folder, grouped by config keys.

    Trials are the folders under ``experiment_dir`` that hold ``params.json`` / ``result.json``.
    The group label is ``"k=v, k=v"`` over ``group_by`` in the given order (e.g.
    ``["kappa_start", "kappa_end"]`` → ``"kappa_start=1.0, kappa_end=0.1"``); a key is looked up
    top level first, then as a '.'/'/' path, then as a unique nested key. The final score is
    ``metric`` in the trial's last ``result.json`` line (if the last line lacks it, e.g. no
    evaluation that iteration, the last line that has it); ``metric`` may be a nested path such
    as ``"evaluation/normalized_score"``. Trials without any value are left out with a warning.
    Groups are ordered by their values (numerically where numeric); within a group, trials
    by folder name.
    """

    def take(tdir: Path, results: list[dict]) -> float | None:
        for r in reversed(results):
            v = _metric_value(r, metric)
            if v is not None:
                return v
        return None

    return _group(experiment_dir, group_by, take)


def curves_from_tune(
    experiment_dir: str | os.PathLike,
    metric: str = "normalized_score",
    group_by: Sequence[str] = (),
    x: str = "training_iteration",
) -> dict[str, list[list[tuple[float, float]]]]:
    """Per-seed learning curves ``[(x, metric), ...]`` grouped like :func:`final_scores_from_tune`;
    the result feeds :func:`plot_curves` directly. Lines lacking ``x`` or ``metric`` are skipped."""

    def take(tdir: Path, results: list[dict]) -> list[tuple[float, float]] | None:
        pts = []
        for r in results:
            xv, yv = _metric_value(r, x), _metric_value(r, metric)
            if xv is not None and yv is not None:
                pts.append((xv, yv))
        return pts or None

    return _group(experiment_dir, group_by, take)


# ---------------------------------------------------------------------------------------------
# Report


def write_report(
    rows: Sequence[PointSummary], out_dir: str | os.PathLike, name: str, title: str
) -> dict[str, str]:
    """Write ``name.csv``, ``name.md`` and ``name.png`` into ``out_dir``; return their paths
    keyed ``"csv"``, ``"md"``, ``"png"``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / f"{name}.csv", "md": out / f"{name}.md", "png": out / f"{name}.png"}
    to_csv(rows, paths["csv"])
    paths["md"].write_text(to_markdown(rows, title=title))
    plot_points(rows, paths["png"], title=title)
    return {k: str(v) for k, v in paths.items()}


def plot_search(
    trials: Sequence[tuple[Mapping[str, Any], float, Any, bool]],
    keys: Sequence[str],
    path: str | os.PathLike,
    *,
    log_keys: set[str] | frozenset[str] = frozenset(),
    ylabel: str = "final normalised score",
    title: str = "",
) -> None:
    """PNG for a search: one panel per searched setting, the final score of each trial against
    its value; colour = seed; hollow markers = trials stopped before their budget.

    ``trials``: (values by setting, final score, seed, reached the budget) per trial. Settings
    with non-numeric values (a `choice` of names) are drawn at categorical positions."""
    if not keys:
        raise ValueError("plot_search: no searched settings")
    n = len(keys)
    fig = _figure(max(4.5, 3.6 * n), 3.6)
    seeds = sorted({t[2] for t in trials}, key=str)
    colours = {s: f"C{i % 10}" for i, s in enumerate(seeds)}
    for i, key in enumerate(keys):
        ax = fig.add_subplot(1, n, i + 1)
        values = [t[0].get(key) for t in trials]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        cats = [] if numeric else sorted({str(v) for v in values})
        for (vals, score, seed, complete), v in zip(trials, values):
            x = v if numeric else cats.index(str(v))
            c = colours[seed]
            ax.scatter([x], [score], s=28, color=c if complete else "none", edgecolors=c, linewidths=1.2, zorder=3)
        if not numeric:
            ax.set_xticks(range(len(cats)))
            ax.set_xticklabels(cats, rotation=30 if max(map(len, cats or [""])) > 8 else 0, fontsize=8)
        elif key in log_keys:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        if i == 0:
            ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=colours[s], label=f"seed {s}") for s in seeds]
    handles.append(Line2D([], [], marker="o", ls="", color="0.4", markerfacecolor="none", label="stopped early"))
    fig.axes[-1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
