"""Tune searches: distributions in a phase's `sweep:`, search algorithms, early stopping, reports.

A phase whose `sweep:` is a *mapping* of settings is a search (a list of points stays a grid of
fixed points). Each value is a plain value (a constant of the search) or one distribution:

    kappa_start: {uniform: [0.0, 0.5]}        # float in [lo, hi]
    meta_lr:     {loguniform: [1.0e-5, 1.0e-3]}   # log-uniform in [lo, hi] (integers for an integer setting)
    kappa_steps: {randint: [0, 100000]}       # integer, both ends included
    replay:      {choice: [balanced, online]} # one of the values, sampled
    n_tau:       {grid: [1000, 5000]}         # every value (Tune's grid_search)

`tune.num_samples` samples are drawn (a grid is crossed with them); each sample runs once per
seed of `tune.seeds` with the same values. `tune.search` picks the search algorithm (Tune's own
random/grid variant generator, or Optuna / HyperOpt from the optional `search` extra);
`tune.scheduler` stops bad trials early (ASHA, median stopping) on the phase's own axis.

Validation here is pure (no Ray, no searcher import); the Tune objects are built lazily.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DISTRIBUTIONS: tuple[str, ...] = ("uniform", "loguniform", "randint", "choice", "grid")
#: search algorithm → (the package it needs, module, class); random is Tune's BasicVariantGenerator
SEARCHERS: dict[str, tuple[str, str, str] | None] = {
    "random": None,
    "optuna": ("optuna", "ray.tune.search.optuna", "OptunaSearch"),
    "hyperopt": ("hyperopt", "ray.tune.search.hyperopt", "HyperOptSearch"),
}
EXTRA = "search"  # pip install 'mprl[search]'
STATUS_STOPPED = "stopped"  # a trial that ended before its budget (early stopping or a stop rule)
#: A search dimension that is no algorithm setting: where in `init_from`'s budget this phase's
#: trial starts, as a fraction in (0, 1] (the hand-over point; `select: {at: [...]}` fixes it instead)
HANDOVER = "handover"


def missing_searcher(name: str) -> str | None:
    """The message for a searcher whose optional package is not installed (None when it is)."""
    need = SEARCHERS.get(name)
    if need is None or importlib.util.find_spec(need[0]) is not None:
        return None
    return (f"search algorithm {name!r} needs the optional package {need[0]!r}, which is not installed: "
            f"pip install 'mprl[{EXTRA}]' (or pip install {need[0]}), or use `search: random`")


# --------------------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Distribution:
    """One searched setting's distribution, as written in the YAML."""

    kind: str
    args: tuple

    @property
    def values_to_check(self) -> list[Any]:
        """What validation checks as values of the setting: the bounds, or every listed value."""
        return list(self.args)

    def to_tune(self, integer: bool) -> Any:
        from ray import tune

        lo_hi = self.args
        if self.kind == "uniform":
            return tune.uniform(*lo_hi)
        if self.kind == "loguniform":
            return tune.lograndint(int(lo_hi[0]), int(lo_hi[1]) + 1) if integer else tune.loguniform(*lo_hi)
        if self.kind == "randint":
            return tune.randint(lo_hi[0], lo_hi[1] + 1)  # Tune's upper bound is exclusive
        if self.kind == "choice":
            return tune.choice(list(self.args))
        return tune.grid_search(list(self.args))

    def describe(self) -> str:
        if self.kind in ("choice", "grid"):
            return f"{self.kind} of {', '.join(map(str, self.args))}"
        return f"{self.kind} [{self.args[0]}, {self.args[1]}]"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def parse_distribution(value: Any) -> Distribution | None:
    """A Distribution, None for a plain value (a constant), or ValueError with the message."""
    if not isinstance(value, Mapping):
        return None
    shape = "{uniform: [lo, hi]}, {loguniform: [lo, hi]}, {randint: [lo, hi]}, {choice: [a, b, ...]} or {grid: [a, b, ...]}"
    if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise ValueError(f"expected a plain value or one distribution: {shape}")
    kind, args = next(iter(value.items()))
    if kind in ("choice", "grid"):
        if not isinstance(args, list) or not args:
            raise ValueError(f"{kind} needs a non-empty list of values, e.g. {{{kind}: [0.1, 0.5]}}")
        return Distribution(kind, tuple(args))
    if not isinstance(args, list) or len(args) != 2 or not all(_number(a) for a in args):
        raise ValueError(f"{kind} needs [lo, hi], two numbers, e.g. {{{kind}: [0.1, 0.9]}}")
    lo, hi = args
    if kind == "randint" and not all(float(a).is_integer() for a in args):
        raise ValueError(f"randint needs two integers [lo, hi] (both included), got [{lo}, {hi}]")
    if not lo < hi:
        raise ValueError(f"{kind} needs lo < hi, got [{lo}, {hi}]")
    if kind == "loguniform" and lo <= 0:
        raise ValueError(f"loguniform needs lo > 0, got [{lo}, {hi}]")
    if kind == "randint":
        lo, hi = int(lo), int(hi)
    return Distribution(kind, (lo, hi))


def split_space(space: Mapping[str, Any]) -> tuple[dict[str, Distribution], dict[str, Any]]:
    """(distributions, constants) of an already-validated search space."""
    dists: dict[str, Distribution] = {}
    constants: dict[str, Any] = {}
    for key, value in space.items():
        d = parse_distribution(value)
        if d is None:
            constants[key] = value
        else:
            dists[key] = d
    return dists, constants


def _is_integer_setting(model: Any, key: str) -> bool:
    field = getattr(model, "model_fields", {}).get(key)
    return field is not None and field.annotation is int


def _handover_problems(dist: Distribution | None, value: Any, init_from: Any) -> list[str]:
    if not (isinstance(init_from, str) or (isinstance(init_from, Mapping) and init_from.get("phase"))):
        return ["handover searches where this phase starts in its `init_from` phase's budget: set `init_from:` to an earlier phase"]
    if dist is not None and dist.kind == "randint":
        return ["handover is a fraction of init_from's budget: use uniform, loguniform, choice or grid"]
    values = [value] if dist is None else dist.values_to_check
    return [f"handover is a fraction of init_from's budget in (0, 1], got {v!r}" for v in values if not (_number(v) and 0 < v <= 1)]


def space_problems(entry: Any, space: Mapping, config: Mapping, tune: Any, check_config: Callable[[Mapping], list],
                   check_phase: Callable[[Mapping], list], init_from: Any = None) -> list[tuple[tuple, str, Any]]:
    """Every problem of a search space: (loc relative to the phase, message, value).

    `check_config(settings)` is the spec's setting check (types, ranges, paradigm) and
    `check_phase(settings)` its whole-phase check (e.g. n_tau below the budget): each bound of a
    range and each listed value is checked as a value of its setting, with the phase's `config:`.
    """
    problems: list[tuple[tuple, str, Any]] = []
    tune = tune if isinstance(tune, Mapping) else {}
    search = tune.get("search", "random")
    if not space:
        problems.append((("sweep",), "a search space needs at least one setting", dict(space)))
    try:
        model = entry.settings
    except Exception:  # noqa: BLE001 - reported by the config check
        model = None
    n_dists = 0
    already = {msg for _, msg, _ in check_phase(dict(config))}  # reported at config: already
    for key, value in space.items():
        loc = ("sweep", key)
        try:
            dist = parse_distribution(value)
        except ValueError as e:
            problems.append((loc, f"{e} (got {value!r})", value))
            continue
        if key == HANDOVER and dist is None:
            problems += [(loc, m, value) for m in _handover_problems(None, value, init_from)]
            continue
        values = [value] if dist is None else dist.values_to_check
        if dist is not None:
            n_dists += 1
            loc = loc + (dist.kind,)
            if dist.kind == "grid" and search != "random":
                problems.append((loc, f"grid is expanded by Tune's own variant generator; with search: {search} write {{choice: [...]}} instead", value))
            if key == HANDOVER:
                problems += [(loc, m, value) for m in _handover_problems(dist, value, init_from)]
                continue
            if dist.kind == "uniform" and _is_integer_setting(model, key):
                problems.append((loc, f"{key!r} is an integer setting: use {{randint: [lo, hi]}} (or loguniform, which samples integers for it)", value))
                continue
        for v in values:
            found = check_config({key: v})
            problems += [(loc, f"{msg} (as a sampled value {v!r})" if dist is not None else msg, v) for _, msg, _ in found]
            if not found:
                problems += [(loc, f"{msg} (with {key}={v!r})", v) for _, msg, _ in check_phase({**config, key: v}) if msg not in already]
    if n_dists == 0 and space:
        problems.append((("sweep",), "a search space needs at least one distribution (or write the values under config:)", dict(space)))
    return problems


def tune_problems(tune: Mapping, is_search: bool) -> list[tuple[tuple, str, Any]]:
    """Search settings that need a search space, and searchers that are not installed."""
    problems: list[tuple[tuple, str, Any]] = []
    search = tune.get("search")
    if isinstance(search, str) and (message := missing_searcher(search)):
        problems.append((("tune", "search"), message, search))
    if not is_search:
        for key, default in (("num_samples", 1), ("search", "random"), ("rerun_best", None)):
            if tune.get(key, default) not in (default, None):
                problems.append((("tune", key), f"{key} needs a search space: write `sweep:` as a mapping of settings to distributions, e.g. {{kappa_start: {{uniform: [0.1, 0.5]}}}}", tune.get(key)))
    return problems


# --------------------------------------------------------------------------- Tune objects


def is_search(phase: Any) -> bool:
    return isinstance(phase.sweep, Mapping)


def searched(phase: Any) -> dict[str, Distribution]:
    """The phase's searched settings and their distributions (in YAML order)."""
    return split_space(phase.sweep)[0] if is_search(phase) else {}


def sweep_point_space(phase: Any, handover: HandoverLookup | None = None) -> dict[str, Any]:
    """The `sweep_point` entry of the param space: Tune domains and the search's constants. With
    Tune's own search a searched hand-over point resolves to its checkpoint in the trial's config
    (`init_checkpoint`, sample_from); a model-based searcher's SeedRepeater does it instead."""
    model = phase.entry.settings
    dists, constants = split_space(phase.sweep)
    space = {**constants, **{k: d.to_tune(_is_integer_setting(model, k)) for k, d in dists.items()}}
    if handover is not None and SEARCHERS[phase.tune.search] is None:
        from ray import tune

        space["init_checkpoint"] = tune.sample_from(handover)
    return space


def searches_handover(phase: Any) -> bool:
    return is_search(phase) and HANDOVER in phase.sweep


class HandoverLookup:
    """Hand-over fraction → the checkpoint of the `init_from` phase run it starts from: at the
    first checkpoint position at or after the fraction of that phase's budget, the best-scoring
    checkpoint there over its trials (the rule of `select: {at: ...}`). Picklable: Tune keeps it
    in its experiment state, and calls it per trial (Tune's own search: `sample_from`)."""

    def __init__(self, table: list[tuple[int, str]], budget: int) -> None:
        self.table, self.budget = sorted(table), budget

    def path(self, fraction: float) -> str:
        point = round(float(fraction) * self.budget)
        return next((p for pos, p in self.table if pos >= point), self.table[-1][1])

    def __call__(self, config: Any) -> str:  # tune.sample_from, given the trial's config
        return self.path(config["sweep_point"][HANDOVER])

    @classmethod
    def from_checkpoints(cls, checkpoints: list[dict[str, Any]], budget: int, axis: str, metric: str, mode: str,
                         resolve: Callable[[str], str]) -> HandoverLookup:
        """From a phase run's lineage checkpoints (rows with `axis`, `metric`, `trial_id`, `path`)."""
        sign = 1.0 if mode == "max" else -1.0
        by_trial: dict[str, list[dict[str, Any]]] = {}
        for c in checkpoints:
            if c.get(axis) is not None and c.get(metric) is not None:
                by_trial.setdefault(c["trial_id"], []).append(c)
        for cs in by_trial.values():
            cs.sort(key=lambda c: c[axis])
        positions = sorted({c[axis] for cs in by_trial.values() for c in cs})
        if not positions:
            from mprl.errors import MprlError

            raise MprlError(f"handover search: the init_from phase run has no scored checkpoint on {axis}")
        table = []
        for pos in positions:
            at = [next(c for c in cs if c[axis] >= pos) for cs in by_trial.values() if cs[-1][axis] >= pos]
            table.append((int(pos), resolve(max(at, key=lambda c: sign * c[metric])["path"])))
        return cls(table, budget)


def search_setup(phase: Any, metric: str, budget_key: str, seed: int, handover: HandoverLookup | None = None) -> dict[str, Any]:
    """What `tune.TuneConfig` and the param space need for a search phase: `search_alg`,
    `scheduler`, `num_samples`, and `seed` (a grid over the seeds, or None when the searcher
    assigns them)."""
    from ray import tune

    from mprl.errors import MprlError

    t = phase.tune
    name = t.search
    out: dict[str, Any] = {"scheduler": trial_scheduler(phase, metric, budget_key)}
    if SEARCHERS[name] is None:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # constant_grid_search: one sample's values are kept across the seed grid
        out.update(search_alg=BasicVariantGenerator(constant_grid_search=True, random_state=seed),
                   num_samples=t.num_samples, seed=tune.grid_search(list(t.seeds)))
        return out
    if message := missing_searcher(name):
        raise MprlError(f"Phase '{phase.name}': {message}")
    _, module, cls = SEARCHERS[name]  # type: ignore[misc]
    searcher_cls = getattr(importlib.import_module(module), cls)
    kwargs = {"random_state_seed": seed} if name == "hyperopt" else {"seed": seed}
    searcher = searcher_cls(metric=metric, mode=t.mode, **kwargs)
    from mprl.searchers import SeedRepeater

    out.update(search_alg=SeedRepeater(searcher, list(t.seeds), handover), num_samples=t.num_samples * len(t.seeds), seed=None)
    return out


def trial_scheduler(phase: Any, metric: str, budget_key: str) -> Any:
    """ASHA or median stopping on the phase's own axis (env steps online, updates offline)."""
    s = phase.tune.scheduler
    if s is None:
        return None
    grace = s.grace_period or phase.evaluation.interval
    if s.type == "asha":
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(time_attr=budget_key, metric=metric, mode=phase.tune.mode, max_t=phase.budget_value,
                             grace_period=grace, reduction_factor=s.reduction_factor)
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(time_attr=budget_key, metric=metric, mode=phase.tune.mode, grace_period=grace,
                              min_samples_required=s.min_samples_required)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def trial_label(config: Mapping[str, Any], keys: list[str] | None = None) -> str | None:
    """A trial's point: its sweep point's `label`, or its sampled settings as 'k=v, k=v'."""
    point = config.get("sweep_point")
    if not isinstance(point, Mapping):
        return None
    if point.get("label") is not None:
        return str(point["label"])
    keys = keys if keys is not None else [k for k in point if k not in ("label", "init_checkpoint")]
    return ", ".join(f"{k}={_fmt(point[k])}" for k in keys if k in point) or None


def trial_status(trial: Any) -> tuple[str, str | None]:
    """(status, detail) of a trial Tune reports complete: 'succeeded' when it reached its
    budget, else 'stopped' (early stopping or a stop rule) with where it stopped."""
    last = trial.last_result or {}
    if last.get("budget_done", True):
        return "succeeded", None
    where = {k: last.get(k) for k in ("num_env_steps_lifetime", "num_updates_lifetime")}
    at = ", ".join(f"{v:,} {k.removeprefix('num_').removesuffix('_lifetime').replace('_', ' ')}" for k, v in where.items() if v)
    return STATUS_STOPPED, f"stopped before its budget at {at}"


# --------------------------------------------------------------------------- reports


@dataclass
class TrialOutcome:
    trial_id: str
    seed: Any
    label: str
    values: dict[str, Any]
    final: float | None
    reached: int  # position on the phase's axis at its last result
    complete: bool  # reached the budget (not stopped early)


def outcomes(results: Any, phase: Any, metric: str, budget_key: str) -> list[TrialOutcome]:
    """One row per trial of a search: its sampled values, final metric, how far it got."""
    keys = list(searched(phase))
    out = []
    for r in results:
        df = r.metrics_dataframe
        if df is None or metric not in df or df[metric].dropna().empty:
            continue
        point = r.config.get("sweep_point") or {}
        last = df.iloc[-1]
        out.append(TrialOutcome(
            trial_id=str(r.metrics.get("trial_id", "")), seed=r.config.get("seed"), label=trial_label(r.config, keys) or "",
            values={k: point.get(k) for k in keys}, final=float(df[metric].dropna().iloc[-1]),
            reached=int(last.get(budget_key, 0) or 0), complete=bool(last.get("budget_done", False)),
        ))
    return out


def best_point(rows: list[TrialOutcome], mode: str) -> tuple[str, dict[str, Any], list[TrialOutcome]] | None:
    """The best configuration: the highest (mode max) mean final metric across seeds among the
    configurations whose every trial reached the budget; early-stopped trials have no score at
    the budget, so a configuration with one is ranked only when no configuration completed."""
    groups: dict[str, list[TrialOutcome]] = {}
    for r in rows:
        groups.setdefault(r.label, []).append(r)
    if not groups:
        return None
    complete = {k: v for k, v in groups.items() if all(r.complete for r in v)} or groups
    sign = 1.0 if mode == "max" else -1.0
    label = max(complete, key=lambda k: sign * sum(r.final for r in complete[k]) / len(complete[k]))  # type: ignore[misc]
    return label, dict(complete[label][0].values), complete[label]


def write_search_report(results: Any, phase: Any, metric: str, budget_key: str, out_dir: Path,
                        write: Callable[[str], None], rerun: Any = None) -> dict[str, Any]:
    """`search.csv` (one row per trial), `search.png` (final metric against each searched
    setting, coloured by seed, hollow when stopped early), `search.md` (the best
    configurations; with a re-run, the best one's statistics across the re-run's seeds)."""
    from mprl.analysis import plot_search, summarize, to_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = outcomes(results, phase, metric, budget_key)
    dists = searched(phase)
    keys = list(dists)
    with open(out_dir / "search.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial_id", "seed", *keys, metric, budget_key, "status"])
        for r in rows:
            w.writerow([r.trial_id, r.seed, *[r.values.get(k) for k in keys], r.final, r.reached, "succeeded" if r.complete else STATUS_STOPPED])
    plot_search(
        [(r.values, r.final, r.seed, r.complete) for r in rows], keys, out_dir / "search.png",
        log_keys={k for k, d in dists.items() if d.kind == "loguniform"}, ylabel=f"final {metric}",
        title=f"{phase.name}: final {metric} per searched setting ({len(rows)} trials)",
    )
    stopped = sum(not r.complete for r in rows)
    best = best_point(rows, phase.tune.mode)
    lines = [f"### {phase.name}: search over {', '.join(f'{k} ({d.describe()})' for k, d in dists.items())}",
             f"{len(rows)} trials ({phase.tune.search} search, {phase.tune.num_samples} sample(s) × {len(phase.tune.seeds)} seed(s)); "
             f"{stopped} stopped before the budget" + (f" by {phase.tune.scheduler.type}" if phase.tune.scheduler else "")]
    by_point: dict[str, list[float]] = {}
    for r in rows:
        if r.complete:
            by_point.setdefault(r.label, []).append(r.final)
    table = summarize(by_point) if by_point else []
    sign = -1 if phase.tune.mode == "max" else 1
    table = sorted(table, key=lambda p: sign * p.mean)
    if table:
        lines.append(to_markdown(table[:10], title=f"final {metric} of configurations that reached the budget (best first)"))
    summary: dict[str, Any] = {"trials": len(rows), "stopped": stopped, "best": None}
    if best is not None:
        label, values, _ = best
        summary["best"] = {"label": label, "values": values}
        lines.append(f"best configuration: {label}")
    if rerun is not None:
        finals = [r.final for r in outcomes(rerun, phase, metric, budget_key)]
        if finals:
            stats = summarize({f"best ({best[0] if best else '?'}), re-run": finals})
            lines.append(to_markdown(stats, title=f"best configuration re-run on {len(finals)} seed(s): final {metric}"))
            summary["rerun"] = {k: getattr(stats[0], k) for k in ("n", "mean", "ci_low", "ci_high", "iqm", "std")}
    text = "\n\n".join(lines)
    (out_dir / "search.md").write_text(text + "\n")
    write(text)
    write(f"[{phase.name}] search report: {out_dir / 'search.md'}, {out_dir / 'search.csv'}, {out_dir / 'search.png'}")
    return summary
