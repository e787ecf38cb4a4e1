"""`mprl bench o2o`: the offline-to-online catalogue side by side (OPT paper, Table 1's protocol).

Per dataset (Hopper-v5 `random` and `medium`, built by mprl), one pipeline through the phase
scheduler, so the same command runs on a laptop at a small budget and on a Ray cluster at the
papers' (`--paper-budget`):

- one offline phase per backbone, one seed (the "one offline checkpoint per dataset"):
  TD3+BC (shared by TD3 and TD3+OPT), IQL, Cal-QL, SPOT (its VAE stage a tenth of the
  updates, as 100k of the paper's 1M) and PARS;
- one fine-tuning phase per method, `--seeds` trials each, every one for the same online budget
  of `--env-steps`: TD3 (online, from TD3+BC), TD3+OPT (N_τ = 1/12 of the budget, N_pretrain =
  2 N_τ, κ 1 → 1 on random and 0.3 → 0.9 on medium, as the paper sets for MuJoCo), IQL, Cal-QL,
  SPOT and PARS (hybrid, from their own checkpoints), RLPD (hybrid from scratch with the
  dataset, no pre-training; its start of 5,000 random steps scaled to a tenth of a smaller budget).
  RLPD and PARS update 20 times per env step (`--high-utd`), the others at their own defaults
  (TD3 and TD3+OPT at UTD 5, as `mprl bench opt`).

The figure is each method's final normalised score (the last evaluation of each seed's trial:
mean, 95% bootstrap CI, IQM over seeds) and its wall-clock (trial seconds, mean per seed, and
the offline phase it starts from). Written to `--out`: o2o.md, o2o.json, o2o.png, each
dataset's pipeline YAML (`mprl run` runs it again) and the runs' lineage.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from mprl.errors import MprlError

#: method → (label, offline backbone phase or None, fine-tuning algorithm, paradigm)
METHODS: dict[str, tuple[str, str | None, str, str]] = {
    "td3": ("TD3", "td3_bc", "td3", "online"),
    "td3_opt": ("TD3+OPT", "td3_bc", "opt", "hybrid"),
    "iql": ("IQL", "iql", "iql", "hybrid"),
    "cal_ql": ("Cal-QL", "cal_ql", "cal_ql", "hybrid"),
    "rlpd": ("RLPD", None, "rlpd", "hybrid"),
    "spot": ("SPOT", "spot", "spot", "hybrid"),
    "pars": ("PARS", "pars", "pars", "hybrid"),
}
QUALITIES = ("random", "medium")
#: the papers' budgets (OPT: 1M offline updates, 300k online env steps; D4RL-sized datasets)
PAPER = {"offline_updates": 1_000_000, "env_steps": 300_000, "dataset_size": 1_000_000, "dataset_budget": 300_000, "eval_episodes": 10}


def _vae_iterations(args: argparse.Namespace) -> int:
    # SPOT's VAE stage: 100k of the paper's 1M offline updates. The fine-tuning phase gets the
    # same total, so it does not resume the stage toward SPOT's default of 100k.
    return max(1, args.offline_updates // 10)


def _offline_phase(name: str, algorithm: str, args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"vae_iterations": _vae_iterations(args)} if algorithm == "spot" else {}
    return {"name": f"offline_{name}", "algorithm": algorithm, "paradigm": "offline", "env": args.env, "dataset": dataset,
            "budget": {"updates": args.offline_updates}, "evaluation": {"interval": args.offline_updates, "episodes": args.eval_episodes},
            "config": config, "tune": {"seeds": [0]},
            "select": "last"}  # the end of the offline budget, as the papers fine-tune (not an early peak, e.g. SPOT's after its VAE stage)


def _finetune_config(method: str, quality: str, args: argparse.Namespace) -> dict[str, Any]:
    steps = args.env_steps
    if method == "td3_opt":
        n_tau = max(1, steps // 12)  # the paper: 25k of 300k
        kappa = (1.0, 1.0) if quality == "random" else (0.3, 0.9)
        return {"n_tau": n_tau, "n_pretrain": 2 * n_tau, "pretrain_updates_per_iteration": 2 * n_tau,
                "kappa_start": kappa[0], "kappa_end": kappa[1], "kappa_steps": steps // 2, "utd": 5}
    if method == "td3":
        return {"utd": 5}  # the OPT paper's TD3 fine-tuning, as `mprl bench opt`
    if method == "rlpd":
        start = min(5_000, steps // 10)
        return {"utd": args.high_utd, "random_steps": start, "learning_starts": start}
    if method == "pars":
        return {"utd": args.high_utd}
    if method == "spot":
        return {"vae_iterations": _vae_iterations(args)}
    return {}


def pipeline(args: argparse.Namespace, quality: str, storage: str) -> dict[str, Any]:
    """One dataset's pipeline: the offline backbones, then every method's fine-tuning."""
    dataset_id = f"mprl/{args.env.split('-')[0].lower()}/{quality}-v0"
    first = {"id": dataset_id, "build": {"quality": quality, "size": args.dataset_size, "budget": args.dataset_budget}}
    methods = {m: METHODS[m] for m in args.methods}
    phases: list[dict[str, Any]] = []
    for backbone in dict.fromkeys(b for _, b, _, _ in methods.values() if b):
        phases.append(_offline_phase(backbone, backbone, args, first if not phases else dataset_id))
    interval = max(1, args.env_steps // args.evaluations)
    for method, (_, backbone, algorithm, paradigm) in methods.items():
        phase: dict[str, Any] = {"name": method, "algorithm": algorithm, "paradigm": paradigm, "env": args.env,
                                 "budget": {"env_steps": args.env_steps},
                                 "evaluation": {"interval": interval, "episodes": args.eval_episodes},
                                 "config": _finetune_config(method, quality, args), "tune": {"seeds": list(args.seeds)},
                                 "regime": "off"}  # the diagnosis's evaluation episodes are not what this bench measures
        if paradigm == "hybrid":
            phase["dataset"] = first if not phases else dataset_id
        if backbone:
            phase["init_from"] = f"offline_{backbone}"
        phases.append(phase)
    return {"name": f"bench-o2o-{quality}", "storage_path": storage, "videos": {"selected": False}, "phases": phases}


def _trial_finals(store: Any, node_id: str) -> list[tuple[float, float]]:
    """(final normalised score, trial seconds) of each trial of a phase, by seed."""
    out = []
    for t in sorted(store.trials(node_id=node_id), key=lambda t: t["seed"] or 0):
        rows = [r for r in store.metrics(trial_id=t["trial_id"]) if r["normalized_score"] is not None]
        if rows:
            out.append((float(rows[-1]["normalized_score"]), float(rows[-1]["time_total_s"] or 0.0)))
    return out


def summarize_run(run_dir: str, methods: list[str]) -> dict[str, Any]:
    """Per method: final scores by seed, their mean / CI / IQM, and the wall-clock."""
    from mprl.analysis import summarize
    from mprl.lineage.store import LineageStore

    out: dict[str, Any] = {"offline": {}, "methods": {}}
    with LineageStore(run_dir, readonly=True) as store:
        for backbone in dict.fromkeys(METHODS[m][1] for m in methods if METHODS[m][1]):
            finals = _trial_finals(store, f"offline_{backbone}")
            out["offline"][backbone] = {"score": finals[0][0], "seconds": finals[0][1]} if finals else None
        for m in methods:
            finals = _trial_finals(store, m)
            scores = [s for s, _ in finals]
            row = summarize({m: scores})[0].__dict__ if scores else None
            backbone = METHODS[m][1]
            out["methods"][m] = {"label": METHODS[m][0], "scores": scores, "final": row,
                                 "seconds_per_seed": sum(s for _, s in finals) / len(finals) if finals else None,
                                 "offline_seconds": (out["offline"].get(backbone) or {}).get("seconds") if backbone else 0.0}
    return out


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    title = f"### Offline-to-online on {args.env}: {args.offline_updates:,} offline updates, then {args.env_steps:,} env steps, {len(args.seeds)} seeds"
    lines = [title, ""]
    for quality, res in results.items():
        start = ", ".join(f"{b} {o['score']:.1f}" for b, o in res["offline"].items() if o)
        lines += [f"**{quality}** (offline starts, normalised: {start or '–'})", "",
                  "| method | final normalised score: mean [95% CI] | IQM | per seed | fine-tuning s/seed | offline s |",
                  "|---|---:|---:|---|---:|---:|"]
        for m in res["methods"].values():
            f = m["final"]
            cells = (f"{f['mean']:.1f} [{f['ci_low']:.1f}, {f['ci_high']:.1f}]", f"{f['iqm']:.1f}") if f else ("–", "–")
            per = ", ".join(f"{s:.1f}" for s in m["scores"]) or "–"
            sec = f"{m['seconds_per_seed']:.0f}" if m["seconds_per_seed"] is not None else "–"
            off = f"{m['offline_seconds']:.0f}" if m["offline_seconds"] else "–"
            lines.append(f"| {m['label']} | {cells[0]} | {cells[1]} | {per} | {sec} | {off} |")
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path, args: argparse.Namespace) -> None:
    from mprl.analysis import _figure

    fig = _figure(4.2 * len(results), 3.4)
    for k, (quality, res) in enumerate(results.items()):
        ax = fig.add_subplot(1, len(results), k + 1)
        ms = list(res["methods"].values())
        for i, m in enumerate(ms):
            ax.scatter([i] * len(m["scores"]), m["scores"], s=16, alpha=0.6)
            if m["final"]:
                f = m["final"]
                ax.errorbar([i + 0.2], [f["mean"]], yerr=[[f["mean"] - f["ci_low"]], [f["ci_high"] - f["mean"]]], fmt="o", capsize=3, color="black")
        ax.set_xticks(range(len(ms)), [m["label"] for m in ms], fontsize=7, rotation=30)
        ax.set_title(f"{args.env} {quality}", fontsize=9)
        ax.set_ylabel("final normalised score" if k == 0 else "")
    fig.suptitle(f"{args.env_steps:,} env steps, {len(args.seeds)} seeds (mean, 95% bootstrap CI)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def bench_o2o(args: argparse.Namespace) -> int:
    import yaml

    from mprl.benchmarks.outputs import write_outputs
    from mprl.pipeline.driver import run_pipeline
    from mprl.spec import parse_pipeline

    if args.paper_budget:
        for k, v in PAPER.items():
            setattr(args, k, v)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise MprlError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.minari_root:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(args.minari_root).resolve())
    storage = args.storage_path or str((out_dir / "runs").resolve())
    say = (lambda _l: None) if args.json else print
    specs = {q: pipeline(args, q, storage) for q in args.qualities}
    for q, raw in specs.items():  # validated before anything runs: a bad option fails here, not after the first dataset
        (out_dir / f"o2o_{q}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    parsed = {q: parse_pipeline(raw, source=f"bench o2o ({q})") for q, raw in specs.items()}
    t0, results, runs = time.time(), {}, {}
    for i, (q, spec) in enumerate(parsed.items()):
        say(f"{q}: {len(spec.phases)} phases ({i + 1}/{len(parsed)}, {(time.time() - t0) / 60:.1f} min so far)")
        runs[q] = run_pipeline(spec, write=say).run_dir
        results[q] = summarize_run(runs[q], list(args.methods))
    out = {"env": args.env, "offline_updates": args.offline_updates, "env_steps": args.env_steps, "seeds": list(args.seeds),
           "dataset_size": args.dataset_size, "dataset_budget": args.dataset_budget, "high_utd": args.high_utd,
           "results": results, "runs": runs, "wall_s": time.time() - t0}
    write_outputs(out_dir, "o2o", out, report(results, args), lambda path: plot(results, path, args), args.json)
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("o2o", help="fine-tune TD3, TD3+OPT, IQL, Cal-QL, RLPD, SPOT and PARS from offline checkpoints on random and medium data")
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--qualities", nargs="+", choices=QUALITIES, default=list(QUALITIES), help="datasets mprl builds")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"a subset of {', '.join(METHODS)}")
    p.add_argument("--dataset-size", type=int, default=50_000, help="transitions per dataset")
    p.add_argument("--dataset-budget", type=int, default=20_000, help="env steps of TD3 training before the medium snapshot is picked")
    p.add_argument("--offline-updates", type=int, default=5_000, help="gradient updates of each offline backbone")
    p.add_argument("--env-steps", type=int, default=3_000, help="online budget of every method (TD3+OPT's N_τ included)")
    p.add_argument("--high-utd", type=int, default=20, help="RLPD's and PARS's updates per env step (both papers: 20)")
    p.add_argument("--evaluations", type=int, default=3, help="evaluations per fine-tuning trial (the last one is the figure)")
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--paper-budget", action="store_true",
                   help="the papers' budgets (1M offline updates, 300k env steps, 1M-transition datasets, 10 episodes): a cluster's run")
    p.add_argument("--minari-root", help="where the datasets are built and found (default: Minari's, MINARI_DATASETS_PATH)")
    p.add_argument("--storage-path", help="where the runs go (default OUT/runs; on several nodes a folder all mount, or s3://...)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", default="bench_o2o", help="folder for o2o.{md,json,png}, the pipelines' YAML and the runs")
    p.set_defaults(func=bench_o2o)
