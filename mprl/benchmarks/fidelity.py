"""`mprl bench fidelity NAME`: a paper's comparison, run from its pipeline file at a budget scale.

Each comparison is one pipeline file under tune_configs/, written at the paper's budgets, plus
the phases it compares and the paper's figures for them (COMPARISONS). `--scale f` multiplies
every budget together — offline updates, online env steps, and the settings counted in them
(N_τ, N_pretrain, κ steps, warm-up steps) — so the protocol keeps its proportions; `--scale 1`
is the paper's run, for a cluster. The upstream phases (offline pre-training, simulation) run
as the file says, on its seeds; the compared phases run on `--seeds`.

A comparison too long for one sitting runs in parts (`--methods`, `--seeds`): each run leaves
`parts/PART.json` in `--out` (scores, curves, wall-clock, the code version, the scale), and the
report — fidelity.md, fidelity.json, fidelity.png — is rebuilt from every part there, so the
results folder holds the whole comparison. `--report` rebuilds it without running anything.
Parts at another scale than the newest are refused: one folder, one budget.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprl.errors import MprlError

CONFIGS = Path(__file__).resolve().parents[2] / "tune_configs"
#: settings counted in env steps or updates: scaled with the budgets
SCALED_SETTINGS = ("n_tau", "n_pretrain", "kappa_steps", "random_steps", "learning_starts", "vae_iterations")


@dataclass(frozen=True)
class Comparison:
    file: str
    source: str
    #: compared phase → (label, the paper's final normalised score or None where it gives a curve only)
    methods: dict[str, tuple[str, float | None]]
    effect: str


COMPARISONS: dict[str, Comparison] = {
    "opt-walker2d-random": Comparison(
        "fidelity_opt_walker2d_random.yaml", "OPT (Shin et al. 2025), Table 1; Fig. 5 (ablations, curves only)",
        {"td3": ("TD3", 0.1), "td3_opt": ("TD3+OPT", 88.0), "opt_random_q_on": ("OPT, random Q_on-pt", None),
         "opt_b_on_only": ("OPT, Q_on-pt on B_on only", None)},
        "TD3 fine-tuning stays near 0 while TD3+OPT reaches 88.0 (the paper's largest gap)"),
    "opt-hopper-random": Comparison(
        "fidelity_opt_hopper_random.yaml", "OPT (Shin et al. 2025), Table 1; Fig. 5 (ablations, curves only)",
        {"td3": ("TD3", 86.0), "td3_opt": ("TD3+OPT", 108.7), "opt_random_q_on": ("OPT, random Q_on-pt", None),
         "opt_b_on_only": ("OPT, Q_on-pt on B_on only", None)},
        "TD3+OPT above TD3 fine-tuning (108.7 vs 86.0)"),
    "rlstudio-halfcheetah": Comparison(
        "fidelity_rlstudio_halfcheetah.yaml", "RL-Studio, Fig. 1 (a) (curves only)",
        {"td3_from_offline": ("TD3 from TD3+BC", None), "td3_scratch": ("TD3 from scratch", None)},
        "the offline start leads TD3 from scratch early in the online budget"),
    "rlstudio-sim-to-real": Comparison(
        "sim_to_real.yaml", "RL-Studio, Fig. 1 (b) (curves only)",
        {"real": ("SAC from sim TD3", None), "real_scratch": ("SAC from scratch", None)},
        "SAC warm-started from the sim TD3 policy leads SAC from scratch in the real context"),
}


def _scaled(n: int, scale: float) -> int:
    return max(1, round(n * scale))


def scaled_pipeline(raw: dict[str, Any], comparison: Comparison, args: argparse.Namespace, storage: str | None) -> dict[str, Any]:
    """The pipeline file with every budget × `args.scale`, the compared phases narrowed to
    `args.methods` on `args.seeds`; `args.evaluations` evaluations per phase."""
    spec = copy.deepcopy(raw)
    spec["name"] = f"{raw['name']}-x{args.scale:g}"
    if storage:
        spec["storage_path"] = storage
    phases = []
    for phase in spec["phases"]:
        compared = phase["name"] in comparison.methods
        if compared and phase["name"] not in args.methods:
            continue
        unit, total = next(iter(phase["budget"].items()))
        phase["budget"] = {unit: _scaled(total, args.scale)}
        phase.setdefault("evaluation", {})["interval"] = max(1, phase["budget"][unit] // args.evaluations)
        if args.eval_episodes:
            phase["evaluation"]["episodes"] = args.eval_episodes
        config = phase.get("config") or {}
        for key in SCALED_SETTINGS:
            if key in config:
                config[key] = _scaled(config[key], args.scale) if config[key] else 0
        if phase["algorithm"] in ("td3", "sac") and not phase.get("init_from"):
            # a fresh phase's warm-up (TD3: 25k, SAC: 5k-10k random steps) is part of the budget: scaled with it
            from mprl.catalogue import get_algorithm

            fields = get_algorithm(phase["algorithm"]).settings.model_fields
            for key in ("random_steps", "learning_starts"):
                config.setdefault(key, _scaled(fields[key].default, args.scale))
        if "n_pretrain" in config:
            config.setdefault("pretrain_updates_per_iteration", max(1, config["n_pretrain"]))
        if config:
            phase["config"] = config
        if compared:
            phase.setdefault("tune", {})["seeds"] = list(args.seeds)
        build = phase["dataset"].get("build") if isinstance(phase.get("dataset"), dict) else None
        if build is not None and args.dataset_size:
            build["size"] = args.dataset_size
        if build is not None and args.dataset_budget and "budget" in build:
            build["budget"] = args.dataset_budget
        phases.append(phase)
    spec["phases"] = phases
    return spec


def _score_of(row: dict[str, Any]) -> float | None:
    v = row["normalized_score"] if row["normalized_score"] is not None else row["evaluation_return"]
    return None if v is None else float(v)


def read_part(run_dir: str, comparison: Comparison) -> dict[str, Any]:
    """From a finished run's lineage: per phase, each trial's curve on its axis, final score and seconds."""
    from mprl.lineage.store import LineageStore

    phases: dict[str, Any] = {}
    with LineageStore(run_dir, readonly=True) as store:
        for node in store.nodes():
            axis = node["axis"]
            trials = []
            for t in sorted(store.trials(node_id=node["node_id"]), key=lambda t: t["seed"] or 0):
                rows = store.metrics(trial_id=t["trial_id"])
                points = [[int(r[axis]), s] for r in rows if r[axis] is not None and (s := _score_of(r)) is not None]
                if not points:
                    continue
                data = json.loads(rows[0]["data_json"] or "{}")
                start = data.get("initial_normalized_score", data.get("initial_evaluation_return"))
                if start is not None:
                    points.insert(0, [0, float(start)])
                trials.append({"seed": t["seed"], "points": points, "final": points[-1][1], "seconds": float(rows[-1]["time_total_s"] or 0.0),
                               "units": int(rows[-1][axis] or 0)})
            phases[node["phase"]] = {"algorithm": node["algorithm"], "paradigm": node["paradigm"], "axis": axis,
                                     "compared": node["phase"] in comparison.methods, "trials": trials,
                                     "normalised": any(r["normalized_score"] is not None for r in store.metrics(node_id=node["node_id"]))}
    return phases


def merge_parts(parts: list[dict[str, Any]], comparison: Comparison) -> dict[str, Any]:
    """Every compared method's trials across parts (a seed run twice: the newer part's), the
    upstream phases per part, and the per-trial cost of each phase."""
    from mprl.analysis import summarize

    methods: dict[str, Any] = {}
    upstream: list[dict[str, Any]] = []
    for part in sorted(parts, key=lambda p: p["finished"]):
        for name, ph in part["phases"].items():
            if not ph["compared"]:
                upstream.append({"part": part["part"], "phase": name, **{k: ph[k] for k in ("algorithm", "axis")},
                                 "finals": [t["final"] for t in ph["trials"]], "seconds": [t["seconds"] for t in ph["trials"]],
                                 "units": [t["units"] for t in ph["trials"]], "points": [t["points"] for t in ph["trials"]]})
                continue
            m = methods.setdefault(name, {"phase": ph, "by_seed": {}})
            for t in ph["trials"]:
                m["by_seed"][t["seed"]] = {**t, "part": part["part"]}
    out: dict[str, Any] = {}
    for name, (label, paper) in comparison.methods.items():
        if name not in methods:
            continue
        trials = [methods[name]["by_seed"][s] for s in sorted(methods[name]["by_seed"])]
        finals = [t["final"] for t in trials]
        at: dict[int, list[float]] = {}
        for t in trials:
            for x, y in t["points"]:
                at.setdefault(x, []).append(y)
        curve = [{"x": x, "mean": r.mean, "ci": [r.ci_low, r.ci_high], "n": r.n}
                 for x, r in zip(sorted(at), summarize({str(x): at[x] for x in sorted(at)}))]
        ph = methods[name]["phase"]
        units = sum(t["units"] for t in trials)
        out[name] = {"label": label, "paper": paper, "axis": ph["axis"], "normalised": ph["normalised"],
                     "seeds": [t["seed"] for t in trials], "finals": finals, "parts": sorted({t["part"] for t in trials}),
                     "final": summarize({name: finals})[0].__dict__ if finals else None, "curve": curve,
                     "seconds_per_trial": sum(t["seconds"] for t in trials) / len(trials) if trials else None,
                     "seconds_per_1k": 1000 * sum(t["seconds"] for t in trials) / units if units else None}
    return {"methods": out, "upstream": upstream}


def full_budget(raw: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {p["name"]: next(iter(p["budget"].items())) for p in raw["phases"]}


def report(name: str, comparison: Comparison, merged: dict[str, Any], meta: dict[str, Any], raw: dict[str, Any]) -> str:
    full = full_budget(raw)
    scale = meta["scale"]
    lines = [f"### {name}: {comparison.source}", "",
             f"`tune_configs/{comparison.file}` with every budget × {scale:g} "
             + ("(the paper's budgets)" if scale == 1 else f"({', '.join(f'{p} {_scaled(n, scale):,} of {n:,} {u}' for p, (u, n) in full.items())})")
             + f". Parts: {', '.join(f'{p} (code {v})' for p, v in meta['parts'].items())}.", "",
             f"The effect to look for: {comparison.effect}.", ""]
    kind = "normalised score" if all(m["normalised"] for m in merged["methods"].values()) else "score (normalised where the env has D4RL references, else return)"
    lines += [f"| method | final {kind}: mean [95% bootstrap CI] | IQM | seeds | per seed | paper (full budget) | s / trial | s / 1k units | full-budget trial (h, 1 CPU) |",
              "|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for phase, m in merged["methods"].items():
        f = m["final"]
        unit, n_full = full[phase]
        full_h = f"{m['seconds_per_1k'] * n_full / 1000 / 3600:.1f}" if m["seconds_per_1k"] else "–"
        paper = "curve only" if m["paper"] is None else f"{m['paper']:.1f}"
        per_1k = f"{m['seconds_per_1k']:.1f} ({unit})" if m["seconds_per_1k"] else "–"
        lines.append(f"| {m['label']} | {f['mean']:.1f} [{f['ci_low']:.1f}, {f['ci_high']:.1f}] | {f['iqm']:.1f} | {f['n']} | "
                     f"{', '.join(f'{s:.1f}' for s in m['finals'])} | {paper} | {m['seconds_per_trial']:.0f} | {per_1k} | {full_h} |")
    if merged["upstream"]:
        lines += ["", "Upstream phases (their checkpoints start the compared ones), per part:", ""]
        for u in merged["upstream"]:
            unit, n_full = full[u["phase"]]
            per_1k = 1000 * sum(u["seconds"]) / sum(u["units"]) if sum(u["units"]) else 0.0
            lines.append(f"- {u['part']}: `{u['phase']}` ({u['algorithm']}) final {', '.join(f'{s:.1f}' for s in u['finals'])}; "
                         f"{sum(u['seconds']) / max(1, len(u['seconds'])):.0f} s per trial, {per_1k:.1f} s per 1k {unit} "
                         f"→ {per_1k * n_full / 1000 / 3600:.1f} h at the full {n_full:,}")
    lines += ["", "s / trial: a trial's own training time (Tune's `time_total_s`, evaluation included); full-budget "
              "trial: that rate × the paper's budget on one CPU of this machine, a linear extrapolation (replay grows, "
              "episodes lengthen as policies improve: a lower bound)."]
    return "\n".join(lines)


def plot(name: str, merged: dict[str, Any], path: Path, meta: dict[str, Any]) -> None:
    """Curves on their axes (updates offline, env steps online/hybrid) and the final scores beside the paper's."""
    from mprl.analysis import _figure
    from mprl.axes import AXIS_UNITS, UNIT_WORDS

    fig = _figure(11.0, 3.8)
    ax_up, ax_on, ax_fin = (fig.add_subplot(1, 3, i) for i in (1, 2, 3))
    for u in merged["upstream"]:  # each part's run of it, on its own axis (updates offline)
        for pts in u["points"]:
            ax_up.plot([x for x, _ in pts], [y for _, y in pts], marker=".", lw=1, label=f"{u['part']} ({u['algorithm']})")
        ax_up.set_xlabel(f"{UNIT_WORDS[AXIS_UNITS[u['axis']]]} ({u['phase']})")
    if merged["upstream"]:
        ax_up.legend(fontsize=6)
    ax_up.set_title("upstream phase, per part", fontsize=9)
    methods = list(merged["methods"].values())
    for i, m in enumerate(methods):
        xs = [c["x"] for c in m["curve"]]
        colour = f"C{i}"
        ax_on.plot(xs, [c["mean"] for c in m["curve"]], marker="o", ms=3, color=colour, label=m["label"])
        ax_on.fill_between(xs, [c["ci"][0] for c in m["curve"]], [c["ci"][1] for c in m["curve"]], color=colour, alpha=0.15, linewidth=0)
        f = m["final"]
        ax_fin.scatter([i] * len(m["finals"]), m["finals"], s=14, alpha=0.5, color=colour)
        ax_fin.errorbar([i + 0.15], [f["mean"]], yerr=[[f["mean"] - f["ci_low"]], [f["ci_high"] - f["mean"]]], fmt="o", capsize=3, color="black")
        if m["paper"] is not None:
            ax_fin.scatter([i + 0.3], [m["paper"]], marker="*", s=90, color=colour, edgecolors="black", linewidths=0.5)
    if methods:
        ax_on.set_xlabel(UNIT_WORDS[AXIS_UNITS[methods[0]["axis"]]] + " (of the compared phase)")
        ax_fin.set_xticks(range(len(methods)), [m["label"] for m in methods], fontsize=7, rotation=25, ha="right")
    ax_on.set_ylabel("score (mean, 95% bootstrap CI across seeds)")
    ax_on.legend(fontsize=7)
    ax_on.set_title("compared phases", fontsize=9)
    ax_fin.set_title("final: seeds, mean [95% CI]\n★ the paper's, at its full budget", fontsize=9)
    fig.suptitle(f"{name}, budgets × {meta['scale']:g}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def load_parts(out_dir: Path) -> list[dict[str, Any]]:
    parts = []
    for p in sorted((out_dir / "parts").glob("*.json")):
        try:
            parts.append(json.loads(p.read_text()))
        except json.JSONDecodeError as e:
            raise MprlError(f"{p} is not a readable part ({e}); remove it or run that part again") from None
    return sorted(parts, key=lambda p: p["finished"])  # oldest first


def write_report(name: str, comparison: Comparison, raw: dict[str, Any], out_dir: Path, as_json: bool) -> int:
    from mprl.benchmarks.outputs import write_outputs

    parts = load_parts(out_dir)
    if not parts:
        raise MprlError(f"{out_dir}/parts holds no finished part of {name}: run `mprl bench fidelity {name} --out {out_dir}` first")
    scales = {p["scale"] for p in parts}
    if len(scales) > 1:
        raise MprlError(f"{out_dir}/parts mixes budget scales {sorted(scales)}: one folder holds one budget; move the odd parts to another --out")
    merged = merge_parts(parts, comparison)
    meta = {"scale": parts[0]["scale"], "parts": {p["part"]: p["code"] for p in sorted(parts, key=lambda p: p["finished"])},
            "wall_s": sum(p["wall_s"] for p in parts)}
    out = {"comparison": name, "file": comparison.file, "source": comparison.source, **meta, **merged}
    text = report(name, comparison, merged, meta, raw)
    write_outputs(out_dir, "fidelity", out, text, lambda path: plot(name, merged, path, meta), as_json, tail=f" ({len(parts)} part(s))")
    return 0


def bench_fidelity(args: argparse.Namespace) -> int:
    import yaml

    from mprl.lineage import code_version
    from mprl.pipeline.driver import run_pipeline
    from mprl.spec import parse_pipeline

    if args.name not in COMPARISONS:
        raise MprlError(f"unknown comparison {args.name!r}; choose from {', '.join(COMPARISONS)}")
    comparison = COMPARISONS[args.name]
    raw = yaml.safe_load((CONFIGS / comparison.file).read_text())
    out_dir = Path(args.out or f"results/fidelity/{args.name}")
    if os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") and not out_dir.is_absolute():
        raise MprlError(f"--out {out_dir} is relative: in a Ray Job it would land in the job's temporary copy of the working directory. "
                        "Pass an absolute path on a folder the head node keeps (`--out /shared/results/fidelity/NAME`).")
    if args.report:
        return write_report(args.name, comparison, raw, out_dir, args.json)
    args.methods = args.methods or list(comparison.methods)
    unknown = [m for m in args.methods if m not in comparison.methods]
    if unknown:
        raise MprlError(f"{args.name} compares {', '.join(comparison.methods)}; not {', '.join(unknown)}")
    if not 0 < args.scale <= 1:
        raise MprlError(f"--scale {args.scale:g} must be in (0, 1]: 1 is the paper's budget")
    if args.evaluations < 1:
        raise MprlError("--evaluations must be at least 1")
    scaled = scaled_pipeline(raw, comparison, args, args.storage_path)
    spec = parse_pipeline(scaled, source=f"bench fidelity {args.name} (tune_configs/{comparison.file} × {args.scale:g})")
    earlier = load_parts(out_dir)
    if earlier and earlier[-1]["scale"] != args.scale:
        raise MprlError(f"{out_dir} holds parts at scale {earlier[-1]['scale']:g}, not {args.scale:g}: pass another --out")
    code = code_version()
    say = (lambda _l: None) if args.json else print
    t0 = time.time()
    result = run_pipeline(spec, write=say)
    part = {"part": args.part or time.strftime("%Y%m%d-%H%M%S"), "code": code, "scale": args.scale, "seeds": list(args.seeds),
            "methods": list(args.methods), "run_dir": result.run_dir, "wall_s": time.time() - t0, "finished": time.time(),
            "pipeline": scaled, "phases": read_part(result.run_dir, comparison)}
    (out_dir / "parts").mkdir(parents=True, exist_ok=True)
    (out_dir / "parts" / f"{part['part']}.json").write_text(json.dumps(part, indent=1, default=str))
    return write_report(args.name, comparison, raw, out_dir, args.json)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("fidelity", help="a paper's comparison (OPT Table 1, RL-Studio Fig. 1) from its tune_configs file, at a budget scale")
    p.add_argument("name", help=f"one of {', '.join(COMPARISONS)}")
    p.add_argument("--scale", type=float, default=0.02, help="every budget × this (1: the paper's; 0.02: 6k of 300k env steps)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the compared phases' seeds (the paper: 10)")
    p.add_argument("--methods", nargs="+", help="a subset of the compared phases (a part); default all")
    p.add_argument("--evaluations", type=int, default=10, help="evaluations per phase (the interval is budget / this)")
    p.add_argument("--eval-episodes", type=int, help="episodes per evaluation (default: the file's, 10)")
    p.add_argument("--dataset-size", type=int, help="transitions of a dataset the file builds (default: the file's, 1M as D4RL)")
    p.add_argument("--dataset-budget", type=int, help="env steps of the agent trained for a medium/expert dataset the file builds (default: the file's)")
    p.add_argument("--part", help="this part's name in OUT/parts (default: the time it ends)")
    p.add_argument("--report", action="store_true", help="run nothing: rebuild the report from OUT/parts")
    p.add_argument("--storage-path", help="where the runs go (default: the file's, ./mprl_results; on a cluster a shared folder or s3://...)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="results folder (default results/fidelity/NAME): parts/, fidelity.{md,json,png}")
    p.set_defaults(func=bench_fidelity)
