"""`mprl bench subroutine`: does offline RL on an online run's own data help it (Su, Luo, Zhang 2025)?

Per seed, one pipeline through the phase scheduler, with three methods that spend the same
online budget of `--pause + --after` env steps:

- **online only**: SAC from scratch for the whole budget, never paused;
- **subroutine, validated**: SAC for `--pause` steps → its experience becomes a dataset
  (`dataset: {from: online}`) → IQL and CQL train on it → an online validation (K episodes per
  candidate, charged to the next phase's budget) chooses among their checkpoints *and the
  paused SAC policy* → SAC fine-tunes the winner for the remaining steps;
- **subroutine, unvalidated**: the same, but SAC fine-tunes the first candidate, IQL's
  checkpoint, unvalidated (`validation: none`: no env step spent, the paused policy is not a
  candidate).

The two subroutine methods share the paused SAC phase and the offline phases of their seed.
The figure is the final evaluation return of each method (mean, 95% bootstrap CI, IQM over
seeds), which start each validated run chose, and the wall-clock. The default task is
MountainCarContinuous-v0, a sparse-reward task (+100 at the flag, a small action cost
otherwise) on which SAC often never finds the flag: the setting where the paper expects
offline RL on the collected data to pay off.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

#: CQL's own default is CORL's 256×3 actor and 3-layer critics; with SAC's 256×2 networks its
#: checkpoint transfers to the SAC fine-tuning exactly (policy and critics), as IQL's does.
SAC_SIZED_CQL = {"hidden": [256, 256], "q_n_hidden_layers": 2}
METHODS = {"online_only": "SAC online only", "sub_val": "subroutine, validated", "sub_noval": "subroutine, unvalidated"}


def pipeline(args: argparse.Namespace, storage: str, seed: int) -> dict[str, Any]:
    ev = {"episodes": args.eval_episodes, "seed": 10_000}
    warm = {"random_steps": args.random_steps, "learning_starts": args.random_steps}
    offline = lambda name, algorithm, **extra: {  # noqa: E731
        "name": name, "algorithm": algorithm, "env": args.env, "dataset": {"from": "online", "take": "all"},
        "budget": {"updates": args.offline_updates}, "evaluation": {"interval": args.offline_updates // 2, **ev}, "tune": {"seeds": [seed]},
        **extra}
    online = lambda name, steps, **extra: {  # noqa: E731
        "name": name, "algorithm": "sac", "env": args.env, "budget": {"env_steps": steps},
        "evaluation": {"interval": args.eval_interval, **ev}, "tune": {"seeds": [seed]}, **extra}
    return {
        "name": f"bench-subroutine-s{seed}", "storage_path": storage, "videos": {"selected": False},
        "phases": [
            online("online_only", args.pause + args.after, config=warm),
            online("online", args.pause, config=warm),
            offline("iql", "iql"),
            offline("cql", "cql", config=SAC_SIZED_CQL),
            online("sub_val", args.after, init_from={"best_of": ["iql", "cql"], "keep": "online", "validation": "online",
                                                     "episodes": args.validation_episodes}),
            online("sub_noval", args.after, init_from={"best_of": ["iql", "cql"], "validation": "none"}),
        ],
    }


def _final_return(store: Any, node_id: str) -> float | None:
    rows = store.metrics(node_id=node_id)
    return float(rows[-1]["evaluation_return"]) if rows else None


def summarize_runs(run_dirs: list[str]) -> dict[str, Any]:
    """Per method: the final evaluation return of each seed's run, and their summary."""
    from mprl.analysis import summarize
    from mprl.lineage.store import LineageStore

    finals: dict[str, list[float]] = {m: [] for m in METHODS}
    choices, paused = [], []
    for run_dir in run_dirs:
        with LineageStore(run_dir, readonly=True) as store:
            for m in METHODS:
                r = _final_return(store, m)
                if r is not None:
                    finals[m].append(r)
            paused.append(_final_return(store, "online"))
            for s in store.selections():
                chosen = store.checkpoint(s["chosen_checkpoint_id"]) if s["chosen_checkpoint_id"] else None
                scores = {c.get("label") or c["checkpoint_id"]: c.get("score") for c in json.loads(s["scores_json"])}
                choices.append({"run": Path(run_dir).name, "phase": s["node_id"], "validation": s["validation"],
                                "chosen": chosen["phase"] if chosen else None, "env_steps": s["env_steps"], "scores": scores})
    out: dict[str, Any] = {"methods": {}, "choices": choices, "paused_returns": paused}
    for m, label in METHODS.items():
        out["methods"][m] = {"label": label, "final_returns": finals[m],
                             "final": summarize({m: finals[m]})[0].__dict__ if finals[m] else None}
    return out


def report(out: dict[str, Any], args: argparse.Namespace) -> str:
    n = len(args.seeds)
    lines = [f"### Offline RL as a subroutine: {args.env}, {args.pause:,} + {args.after:,} env steps, {n} seeds", "",
             "| method | final return: mean [95% CI] | IQM | per seed |", "|---|---:|---:|---|"]
    for m in out["methods"].values():
        f = m["final"]
        cell = f"{f['mean']:.1f} [{f['ci_low']:.1f}, {f['ci_high']:.1f}]" if f else "–"
        lines.append(f"| {m['label']} | {cell} | {f['iqm']:.1f} |" if f else f"| {m['label']} | – | – |")
        lines[-1] += f" {', '.join(f'{r:.1f}' for r in m['final_returns'])} |"
    lines += ["", "paused SAC policy at the pause (per seed): " + ", ".join("–" if r is None else f"{r:.1f}" for r in out["paused_returns"])]
    for c in out["choices"]:
        scores = ", ".join(f"{k} {v:.1f}" if isinstance(v, (int, float)) else f"{k} –" for k, v in c["scores"].items())
        lines.append(f"- {c['run']} {c['phase']} ({c['validation']}): chose {c['chosen']} ({c['env_steps']:,} validation env steps; {scores})")
    return "\n".join(lines)


def plot(out: dict[str, Any], path: Path, args: argparse.Namespace) -> None:
    from mprl.analysis import _figure

    fig = _figure(6.0, 3.4)
    ax = fig.add_subplot(111)
    for i, m in enumerate(out["methods"].values()):
        rs = m["final_returns"]
        ax.scatter([i] * len(rs), rs, s=18, alpha=0.7)
        if m["final"]:
            f = m["final"]
            ax.errorbar([i + 0.15], [f["mean"]], yerr=[[f["mean"] - f["ci_low"]], [f["ci_high"] - f["mean"]]], fmt="o", capsize=4, color="black")
    ax.set_xticks(range(len(out["methods"])), [m["label"] for m in out["methods"].values()], fontsize=8)
    ax.set_ylabel(f"final evaluation return ({args.env})")
    ax.set_title(f"{args.pause + args.after:,} env steps each, {len(args.seeds)} seeds (mean, 95% bootstrap CI)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def bench_subroutine(args: argparse.Namespace) -> int:
    from mprl.benchmarks.outputs import write_outputs
    from mprl.pipeline.driver import run_pipeline
    from mprl.spec import parse_pipeline

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = str((out_dir / "runs").resolve())
    t0, run_dirs = time.time(), []
    for seed in args.seeds:
        spec = parse_pipeline(pipeline(args, storage, seed), source="bench subroutine")
        if not args.json:
            print(f"seed {seed}: {len(spec.phases)} phases ({len(run_dirs) + 1}/{len(args.seeds)}, {(time.time() - t0) / 60:.1f} min so far)")
        run_dirs.append(run_pipeline(spec, write=(lambda _l: None) if args.json else print).run_dir)
    out = summarize_runs(run_dirs)
    out.update({"runs": run_dirs, "wall_s": time.time() - t0, "env": args.env, "pause": args.pause, "after": args.after,
                "offline_updates": args.offline_updates, "seeds": list(args.seeds)})
    write_outputs(out_dir, "subroutine", out, report(out, args), lambda path: plot(out, path, args), args.json)
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("subroutine", help="online SAC alone vs with offline RL (IQL, CQL) on its own data at a pause, validated or not")
    p.add_argument("--env", default="MountainCarContinuous-v0", help="a sparse-reward task by default")
    p.add_argument("--pause", type=int, default=8_000, help="online env steps before the pause")
    p.add_argument("--after", type=int, default=8_000, help="online env steps after it (the validation's are charged to them)")
    p.add_argument("--offline-updates", type=int, default=3_000, help="IQL and CQL gradient updates on the paused run's data")
    p.add_argument("--random-steps", type=int, default=1_000, help="uniform-random env steps at the start of the fresh SAC phases")
    p.add_argument("--eval-interval", type=int, default=2_000)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--validation-episodes", type=int, default=1,
                   help="online validation: episodes per candidate (MountainCar's last 999 steps: 3 candidates cost 3k env steps)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", default="bench_subroutine", help="folder for subroutine.{md,json,png} and the runs")
    p.set_defaults(func=bench_subroutine)
