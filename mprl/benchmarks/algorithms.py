"""`mprl bench algorithms`: does each offline algorithm learn? Final normalised scores on a
Hopper-v5 `medium` dataset that mprl builds, over seeds, beside the dataset's behaviour return
and d3rlpy's same algorithm on the same data and update budget.

Every run happens in this process, one after another, one torch thread: ours through RLlib
(one offline iteration of `--updates` updates, then `--eval-episodes` deterministic episodes),
d3rlpy through its own `fit`, evaluated with the same protocol (same episodes, same seeds).
Writes report.md, scores.csv and scores.png to `--out`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mprl.benchmarks.learner import _ray
from mprl.errors import MprlError


def offline_algorithms(names: list[str] | None) -> dict[str, Any]:
    from mprl.benchmarks.learner import off_policy_algorithms, skip_reason

    algos = off_policy_algorithms(names)
    out = {n: i for n, i in algos.items() if "offline" in i.paradigms and skip_reason(i) is None}
    if names and len(out) < len(names):
        raise MprlError(f"not offline algorithms: {', '.join(n for n in names if n not in out)}")
    return out


def behaviour_return(arrays: dict[str, np.ndarray]) -> float:
    """Mean return of the dataset's complete episodes (the last, cut by the dataset's size, is left out)."""
    from algorithms.common.replay import episode_ids

    ends = (np.asarray(arrays["terminals"]) > 0) | (np.asarray(arrays["truncations"]) > 0)
    ids = np.asarray(episode_ids(arrays["terminals"], arrays["truncations"])).astype(np.int64)
    returns = np.bincount(ids, weights=np.asarray(arrays["rewards"], dtype=np.float64))
    complete = np.unique(ids[ends])
    return float(returns[complete].mean() if complete.size else returns.mean())


def _dataset(args: argparse.Namespace, say: Callable[[str], None]) -> str:
    from mprl.datasets import build_dataset
    from mprl.datasets.ids import default_dataset_id

    if args.dataset:
        return args.dataset
    root = Path(args.minari_root or Path(args.out) / "minari")
    os.environ["MINARI_DATASETS_PATH"] = str(root.resolve())
    dataset_id = default_dataset_id(args.env, args.quality)
    if (root / dataset_id).exists():
        say(f"using {dataset_id} in {root}")
        return dataset_id
    say(f"building {dataset_id} in {root}: {args.dataset_budget} env steps of TD3, then {args.dataset_size} transitions ...")
    t0 = time.perf_counter()
    ds = build_dataset(args.env, args.quality, size=args.dataset_size, budget=args.dataset_budget, seed=0, progress=say)
    say(f"built {ds} in {time.perf_counter() - t0:.0f}s")
    return ds


def run_ours(info: Any, args: argparse.Namespace, dataset: str, seed: int) -> float:
    cfg = (info.config_class()().environment(args.env)
           .training(paradigm="offline", dataset=dataset, updates_per_iteration=args.updates, budget_updates=args.updates, eval_episodes=args.eval_episodes)
           .debugging(seed=seed))
    algo = cfg.build_algo()
    try:
        return float(algo.train()["normalized_score"])
    finally:
        algo.stop()


def run_d3rlpy(info: Any, args: argparse.Namespace, dataset: str, seed: int, arrays: dict[str, np.ndarray], data: Any) -> float | None:
    import d3rlpy
    import torch

    from mprl.benchmarks import d3rlpy_ref
    from mprl.envs import normalized_score
    from mprl.evaluation import evaluate_policy

    cfg = info.config_class()().environment(args.env).training(paradigm="offline", dataset=dataset, budget_updates=args.updates)
    d3rlpy.seed(seed)
    torch.manual_seed(seed)
    model = d3rlpy_ref.make(info.name, cfg, dataset_obs=arrays["obs"], budget=args.updates)
    if model is None:
        return None
    d3rlpy_ref.fit(model, data, args.updates)
    res = evaluate_policy(lambda o: model.predict(np.asarray(o, dtype=np.float32)[None])[0], args.env, args.eval_episodes, cfg.eval_seed)
    return float(normalized_score(res.mean, args.env))


def bar_plot(rows: dict[str, dict[str, Any]], behaviour: float, path: Path, title: str) -> None:
    """Grouped bars (mprl, d3rlpy) per algorithm, 95% CI error bars, seeds as dots, behaviour as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    x = np.arange(len(names), dtype=float)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(names) + 2), 4.0))
    for j, (impl, colour) in enumerate((("mprl", "C0"), ("d3rlpy", "C1"))):
        xs = x + (j - 0.5) * 0.38
        for i, name in enumerate(names):
            s = rows[name].get(impl)
            if s is None:
                continue
            ax.bar(xs[i], s.mean, 0.36, color=colour, alpha=0.8, label=impl if i == 0 or impl not in ax.get_legend_handles_labels()[1] else None,
                   yerr=[[max(s.mean - s.ci_low, 0)], [max(s.ci_high - s.mean, 0)]], capsize=4)
            ax.scatter([xs[i]] * len(s.scores), s.scores, s=10, color="0.25", zorder=3)
    ax.axhline(behaviour, color="0.4", ls="--", lw=1, label=f"behaviour ({behaviour:.1f})")
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.set_ylabel("final normalised score")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bench_algorithms(args: argparse.Namespace) -> int:
    import torch

    from algorithms.common.learner import load_dataset_arrays
    from mprl.analysis import summarize
    from mprl.benchmarks import d3rlpy_ref
    from mprl.envs import normalized_score

    torch.set_num_threads(1)
    say = (lambda s: None) if args.json else print
    algos = offline_algorithms(args.algo)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    use_d3rlpy = not args.no_d3rlpy and d3rlpy_ref.available()
    if not args.no_d3rlpy and not use_d3rlpy:
        say(d3rlpy_ref.missing_line())
    t_start = time.perf_counter()
    dataset = _dataset(args, say)
    probe = next(iter(algos.values())).config_class()().environment(args.env).training(paradigm="offline", dataset=dataset)
    arrays = load_dataset_arrays(probe, ())
    behaviour = float(normalized_score(behaviour_return(arrays), args.env))
    data = d3rlpy_ref.mdp_dataset(arrays) if use_d3rlpy else None
    say(f"{dataset}: {len(arrays['rewards'])} transitions, behaviour return {behaviour:.1f} (normalised); "
        f"{args.updates} updates per run, seeds {args.seeds}, {args.eval_episodes} evaluation episodes")

    scores: dict[str, dict[str, list[float]]] = {n: {"mprl": [], "d3rlpy": []} for n in algos}
    seconds: dict[str, dict[str, float]] = {n: {"mprl": 0.0, "d3rlpy": 0.0} for n in algos}
    with _ray():
        for seed in args.seeds:
            for name, info in algos.items():
                runs: dict[str, Callable[[], float | None]] = {"mprl": lambda info=info, seed=seed: run_ours(info, args, dataset, seed)}
                if use_d3rlpy:
                    runs["d3rlpy"] = lambda info=info, seed=seed: run_d3rlpy(info, args, dataset, seed, arrays, data)
                for impl, run in runs.items():
                    t0 = time.perf_counter()
                    score = run()
                    if score is None:
                        continue
                    seconds[name][impl] += time.perf_counter() - t0
                    scores[name][impl].append(score)
                    say(f"  {name:7s} {impl:6s} seed {seed}: {score:6.1f}  ({time.perf_counter() - t0:.0f}s)")

    rows: dict[str, dict[str, Any]] = {}
    for name in algos:
        present = {impl: s for impl, s in scores[name].items() if s}
        summary = summarize(present) if present else []
        rows[name] = {r.point: r for r in summary}
    total = time.perf_counter() - t_start
    result = {
        "env": args.env, "dataset": dataset, "transitions": len(arrays["rewards"]), "behaviour_normalized_return": round(behaviour, 2),
        "updates": args.updates, "seeds": list(args.seeds), "eval_episodes": args.eval_episodes, "wall_clock_s": round(total, 1),
        "algorithms": {n: {impl: {"mean": r.mean, "ci95": [r.ci_low, r.ci_high], "scores": r.scores, "seconds_per_run": round(seconds[n][impl] / r.n, 1)}
                           for impl, r in rows[n].items()} for n in algos},
    }
    title = f"{args.env} {args.quality} ({dataset}), {args.updates} updates, {len(args.seeds)} seeds"
    write_report(out_dir, result, rows, behaviour, title)
    if args.json:
        print(json.dumps(result))
    else:
        print()
        print((out_dir / "report.md").read_text())
        print(f"report, scores.csv and scores.png in {out_dir}")
    return 0


def write_report(out_dir: Path, result: dict[str, Any], rows: dict[str, dict[str, Any]], behaviour: float, title: str) -> None:
    fmt = lambda r: "—" if r is None else f"{r.mean:.1f} [{r.ci_low:.1f}, {r.ci_high:.1f}]"
    lines = [f"# {title}", "",
             (f"Behaviour return of the dataset (normalised): **{behaviour:.1f}**. Final normalised score after "
              f"{result['updates']} updates, {result['eval_episodes']} deterministic evaluation episodes; mean [95% bootstrap CI] "
              f"over seeds {result['seeds']}. Whole benchmark: {result['wall_clock_s'] / 60:.1f} min."), "",
             "| algorithm | mprl | d3rlpy | behaviour | mprl seeds | d3rlpy seeds | s/run mprl | s/run d3rlpy |",
             "|---|---|---|---|---|---|---|---|"]
    with open(out_dir / "scores.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["algorithm", "implementation", "n", "mean", "ci_low", "ci_high", "scores", "seconds_per_run", "behaviour"])
        for name, by_impl in rows.items():
            for impl, r in by_impl.items():
                w.writerow([name, impl, r.n, f"{r.mean:.3f}", f"{r.ci_low:.3f}", f"{r.ci_high:.3f}", " ".join(f"{s:.2f}" for s in r.scores),
                            result["algorithms"][name][impl]["seconds_per_run"], f"{behaviour:.3f}"])
            m, d = by_impl.get("mprl"), by_impl.get("d3rlpy")
            seeds = lambda r: "—" if r is None else ", ".join(f"{s:.1f}" for s in r.scores)
            spr = lambda impl, name=name: str(result["algorithms"][name].get(impl, {}).get("seconds_per_run", "—"))
            lines.append(f"| {name} | {fmt(m)} | {fmt(d)} | {behaviour:.1f} | {seeds(m)} | {seeds(d)} | {spr('mprl')} | {spr('d3rlpy')} |")
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    bar_plot(rows, behaviour, out_dir / "scores.png", title)


def add_parser(sub: Any, func: Callable[[argparse.Namespace], int]) -> None:
    p = sub.add_parser("algorithms", help="each offline algorithm's final score on a Hopper medium dataset mprl builds, beside d3rlpy's")
    p.add_argument("--algo", nargs="+", metavar="NAME", help="offline algorithms to run (default: every registered one)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--quality", default="medium", help="dataset quality mprl builds")
    p.add_argument("--dataset", help="an existing Minari dataset id (in MINARI_DATASETS_PATH) instead of building one")
    p.add_argument("--dataset-size", type=int, default=100_000, help="transitions recorded by the medium policy")
    p.add_argument("--dataset-budget", type=int, default=40_000, help="env steps of TD3 training before the medium snapshot is picked")
    p.add_argument("--minari-root", help="where the built dataset lives (default OUT/minari; reused when present)")
    p.add_argument("--updates", type=int, default=5000, help="gradient updates per run (the budget, the same for mprl and d3rlpy)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--no-d3rlpy", action="store_true", help="mprl's algorithms only")
    p.add_argument("--out", default="bench_algorithms", help="folder for report.md, scores.csv, scores.png")
    p.set_defaults(func=func)
