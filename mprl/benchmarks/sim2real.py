"""`mprl bench sim2real`: does a policy learnt in simulation help in the real context?

Runs `tune_configs/sim_to_real.yaml`'s pipeline through the phase scheduler at budgets this
machine can run: TD3 on the simulator (one trial per seed; the best checkpoint is handed on),
then on the "real" deployment context SAC warm-started from it (one trial per seed) and SAC
from scratch (one trial per seed), both for the same number of real environment steps and
evaluated on the same seeds. The figure is the evaluation return after N real steps, per
method across seeds (mean, 95% bootstrap CI, IQM), at every evaluation point; plus the
zero-shot return of the sim policy in the real context (the warm start's evaluation before
its first update) and the sim policy's return in simulation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

METHODS = {"real": "SAC warm-started from sim TD3", "real_scratch": "SAC from scratch"}


def pipeline(args: argparse.Namespace, storage: str) -> dict[str, Any]:
    """The sim_to_real pipeline with the bench's budgets (warm-up of fresh phases: a tenth of their budget)."""
    seeds = list(args.seeds)
    ev = {"episodes": args.eval_episodes, "seed": 10_000}
    warm_sim, warm_real = max(1, args.sim_steps // 10), max(1, args.real_steps // 10)
    return {
        "name": "bench-sim2real", "storage_path": storage, "videos": {"selected": False},
        "phases": [
            {"name": "sim", "algorithm": "td3", "env": args.sim_env, "budget": {"env_steps": args.sim_steps},
             "evaluation": {"interval": max(1, args.sim_steps // 5), **ev},
             "config": {"random_steps": warm_sim, "learning_starts": warm_sim}, "tune": {"seeds": seeds}},
            {"name": "real", "algorithm": "sac", "env": args.real_env, "init_from": "sim", "budget": {"env_steps": args.real_steps},
             "evaluation": {"interval": args.eval_interval, **ev}, "tune": {"seeds": seeds}},
            {"name": "real_scratch", "algorithm": "sac", "env": args.real_env, "budget": {"env_steps": args.real_steps},
             "evaluation": {"interval": args.eval_interval, **ev},
             "config": {"random_steps": warm_real, "learning_starts": warm_real}, "tune": {"seeds": seeds}},
        ],
    }


def summarize_run(run_dir: str) -> dict[str, Any]:
    """Per method: returns at each evaluation point and after the whole real budget, across seeds."""
    from mprl.analysis import summarize
    from mprl.lineage.store import LineageStore

    store = LineageStore(run_dir, readonly=True)
    out: dict[str, Any] = {"methods": {}}
    for node_id, label in METHODS.items():
        per_trial: dict[str, list[tuple[int, float]]] = {}
        initial: list[float] = []
        for m in store.metrics(node_id=node_id):
            per_trial.setdefault(m["trial_id"], []).append((int(m["num_env_steps"]), float(m["evaluation_return"])))
            data = json.loads(m["data_json"] or "{}")
            if m["iteration"] == 1 and data.get("initial_evaluation_return") is not None:
                initial.append(float(data["initial_evaluation_return"]))
        steps = sorted({x for rows in per_trial.values() for x, _ in rows})
        at = {x: [r for rows in per_trial.values() for s, r in rows if s == x] for x in steps}
        final = [rows[-1][1] for rows in per_trial.values()]
        rows = summarize({f"{x}": v for x, v in at.items() if v})
        out["methods"][node_id] = {
            "label": label, "n": len(final), "final_returns": final,
            "final": summarize({node_id: final})[0].__dict__ if final else None,
            "curve": [{"env_steps": int(r.point), "mean": r.mean, "ci": [r.ci_low, r.ci_high], "iqm": r.iqm, "n": r.n} for r in rows],
            "zero_shot_returns": initial,
        }
    out["sim_final_returns"] = _last_by_trial(store, "sim")
    a, b = out["methods"]["real"], out["methods"]["real_scratch"]
    if a["final"] and b["final"]:
        out["final_gain"] = a["final"]["mean"] - b["final"]["mean"]
    return out


def _last_by_trial(store: Any, node_id: str) -> list[float]:
    last: dict[str, float] = {}
    for m in store.metrics(node_id=node_id):  # ordered by trial, iteration: the last stays
        last[m["trial_id"]] = float(m["evaluation_return"])
    return list(last.values())


def report(out: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"### Sim → real: {args.sim_env} → {args.real_env}; return after N real env steps ({len(args.seeds)} seeds)", "",
             "| real env steps | " + " | ".join(f"{m['label']}: mean [95% CI], IQM" for m in out["methods"].values()) + " |",
             "|---:|" + "---:|" * len(out["methods"])]
    curves = {k: {c["env_steps"]: c for c in m["curve"]} for k, m in out["methods"].items()}
    for x in sorted({x for c in curves.values() for x in c}):
        cells = []
        for k in out["methods"]:
            c = curves[k].get(x)
            cells.append(f"{c['mean']:.1f} [{c['ci'][0]:.1f}, {c['ci'][1]:.1f}], {c['iqm']:.1f}" if c else "–")
        lines.append(f"| {x:,} | " + " | ".join(cells) + " |")
    z = out["methods"]["real"]["zero_shot_returns"]
    if z:
        lines += ["", f"zero-shot (the selected sim policy in the real context, before any real step): {sum(z) / len(z):.1f}"]
    sim = out["sim_final_returns"]
    if sim:
        lines.append(f"sim TD3 after {args.sim_steps:,} steps, in simulation (final, per seed): {', '.join(f'{r:.1f}' for r in sim)}")
    if "final_gain" in out:
        lines.append(f"final gain of the warm start over scratch after {args.real_steps:,} real steps: {out['final_gain']:+.1f}")
    return "\n".join(lines)


def plot(out: dict[str, Any], path: Path, args: argparse.Namespace) -> None:
    from mprl.analysis import _figure

    fig = _figure(6.5, 3.6)
    ax = fig.add_subplot(111)
    for m in out["methods"].values():
        xs = [c["env_steps"] for c in m["curve"]]
        ax.plot(xs, [c["mean"] for c in m["curve"]], marker="o", ms=3, label=m["label"])
        ax.fill_between(xs, [c["ci"][0] for c in m["curve"]], [c["ci"][1] for c in m["curve"]], alpha=0.2)
    ax.set_xlabel(f"real environment steps ({args.real_env})")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"sim → real, {len(args.seeds)} seeds (mean, 95% bootstrap CI)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def bench_sim2real(args: argparse.Namespace) -> int:
    from mprl.benchmarks.outputs import write_outputs
    from mprl.pipeline.driver import run_pipeline
    from mprl.spec import parse_pipeline

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = parse_pipeline(pipeline(args, str((out_dir / "runs").resolve())), source="bench sim2real")
    t0 = time.time()
    result = run_pipeline(spec, write=(lambda _l: None) if args.json else print)
    out = summarize_run(result.run_dir)
    out.update({"run_dir": result.run_dir, "wall_s": time.time() - t0, "sim_env": args.sim_env, "real_env": args.real_env,
                "sim_steps": args.sim_steps, "real_steps": args.real_steps, "seeds": list(args.seeds)})
    write_outputs(out_dir, "sim2real", out, report(out, args), lambda path: plot(out, path, args), args.json, tail=f"; lineage: {result.run_dir}")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sim2real", help="TD3 in simulation → SAC in the real context vs SAC from scratch there: return after N real steps")
    p.add_argument("--sim-env", default="Hopper-v5")
    p.add_argument("--real-env", default="mprl/Hopper-real-v0", help="a deployment context (`mprl envs`)")
    p.add_argument("--sim-steps", type=int, default=30_000, help="TD3 env steps in simulation, per seed")
    p.add_argument("--real-steps", type=int, default=10_000, help="real env steps of each SAC run")
    p.add_argument("--eval-interval", type=int, default=1_000, help="real env steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--json", action="store_true", help="print one JSON object (methods, final_gain, ...)")
    p.add_argument("--out", default="bench_sim2real", help="folder for sim2real.{md,json,png} and the run")
    p.set_defaults(func=bench_sim2real)
