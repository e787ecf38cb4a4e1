"""`mprl bench scheduler`: what a phase transition costs, from the end of one phase's last
trial to the first training step of the next, measured by the scheduler in a real run."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from typing import Any


def bench_pipeline(storage: str, env: str, updates: int, env_steps: int) -> dict[str, Any]:
    """offline TD3+BC → online TD3 → online SAC: two transitions, one of them across algorithm families."""
    evaluation = {"episodes": 2}
    return {
        "name": "bench-scheduler", "storage_path": storage, "videos": {"selected": False},
        "phases": [
            {"name": "offline", "algorithm": "td3_bc", "env": env, "budget": {"updates": updates},
             "dataset": {"id": f"mprl/{env.split('-')[0].lower()}/random-v0", "build": {"quality": "random", "size": 5000}},
             "evaluation": {"interval": updates, **evaluation}},
            {"name": "td3", "algorithm": "td3", "env": env, "init_from": "offline", "budget": {"env_steps": env_steps},
             "evaluation": {"interval": env_steps, **evaluation}, "config": {"utd": 1}},
            {"name": "sac", "algorithm": "sac", "env": env, "init_from": "td3", "budget": {"env_steps": env_steps},
             "evaluation": {"interval": env_steps, **evaluation}, "config": {"utd": 1}},
        ],
    }


def bench_scheduler(args: argparse.Namespace) -> int:
    import ray

    from mprl.runner import run_pipeline
    from mprl.spec import parse_pipeline

    say = (lambda s: None) if args.json else print
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MINARI_DATASETS_PATH"] = os.path.join(tmp, "datasets")
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            transitions: list[dict[str, Any]] = []
            for i in range(args.repeats):
                spec = parse_pipeline(bench_pipeline(os.path.join(tmp, "runs"), args.env, args.updates, args.env_steps), source="bench-scheduler")
                say(f"run {i + 1}/{args.repeats}: offline td3_bc → online td3 → online sac ...")
                result = run_pipeline(spec, write=lambda _: None)
                summary = json.loads(open(os.path.join(result.run_dir, "summary.json")).read())
                for p in summary["phases"][1:]:
                    transitions.append({"into": p["phase"], **p["transition"]})
                    t = p["transition"]
                    say(f"  → {p['phase']:4s} {t['total_s']:5.2f} s  (hand-off {t['handoff_s']:.2f} s, trial start {t['trial_start_s']:.2f} s, "
                        f"set-up and warm start {t['setup_s']:.2f} s)")
        finally:
            ray.shutdown()
    med = {k: statistics.median(t[k] for t in transitions) for k in ("total_s", "handoff_s", "trial_start_s", "setup_s")}
    out = {"transition_s": med["total_s"], "transitions": transitions, "median": med, "target_s": 10.0,
           "env": args.env, "repeats": args.repeats, "load_avg": os.getloadavg()[0]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"\nphase transition (median of {len(transitions)}): {med['total_s']:.2f} s  (target < 10 s)")
        print(f"  hand-off {med['handoff_s']:.2f} s · Tune → trial started {med['trial_start_s']:.2f} s · set-up and warm start {med['setup_s']:.2f} s")
    return 0


def add_parser(bsub: Any) -> None:
    b = bsub.add_parser("scheduler", help="phase-transition overhead: end of one phase → first training step of the next")
    b.add_argument("--json", action="store_true", help="print one JSON object (key: transition_s)")
    b.add_argument("--env", default="Hopper-v5")
    b.add_argument("--updates", type=int, default=200, help="offline phase budget")
    b.add_argument("--env-steps", type=int, default=200, help="online phase budgets")
    b.add_argument("--repeats", type=int, default=2, help="pipelines run (two transitions each)")
    b.set_defaults(func=bench_scheduler)
