"""`mprl bench opt`: TD3 fine-tuning vs TD3+OPT from the same TD3+BC checkpoint (moved from mprl/bench.py)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any


def learner_flops(algo: Any, method: str, n: int, *args: Any) -> float:
    """Matrix-multiply FLOPs of one update: `n` extra updates of the (local) learner, counted."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        algo.call_learner(method, n, *args)
    return counter.get_total_flops() / n


def bench_opt(args: argparse.Namespace) -> int:
    """TD3 fine-tuning vs TD3+OPT from the same TD3+BC checkpoint, on a dataset mprl builds.

    Every run happens in this process, one after another, one torch thread, so wall-clock
    times compare; OPT's budget includes its N_τ collection steps, as in the paper. Both are
    evaluated with the same protocol after every iteration (an evaluation of a policy whose
    weights have not changed since the last one is reused: OPT's collect and pre-train stages).
    After the timed runs, a few extra updates of each learner are counted with torch's FLOP
    counter: on a compute-bound CPU, the training FLOP ratio is what the cost ratio tends to.
    """
    import ray

    from algorithms.opt import OPTConfig
    from algorithms.td3 import TD3Config
    from algorithms.td3_bc import TD3BCConfig
    from mprl.analysis import summarize, to_markdown
    from mprl.datasets import build_dataset

    say = (lambda s: None) if args.json else print
    steps, n_tau = args.env_steps, max(1, args.env_steps // 12)  # the paper: 25k of 300k
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MINARI_DATASETS_PATH"] = tmp
        dataset = build_dataset(args.env, args.quality, size=args.dataset_size, budget=args.dataset_budget, seed=0, progress=None)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        say(f"offline: TD3+BC on {dataset}, {args.offline_updates} updates ...")
        bc = TD3BCConfig().environment(args.env).training(dataset=dataset, updates_per_iteration=args.offline_updates, eval_episodes=args.eval_episodes).build_algo()
        offline_score = bc.train().get("normalized_score")
        checkpoint = bc.save_to_path(os.path.join(tmp, "td3bc"))
        bc.stop()
        say(f"offline normalised score {offline_score:.1f}; fine-tuning {steps} env steps at UTD 5, seeds {args.seeds}")

        # `budget_env_steps` cuts the last iteration so both stop at exactly `steps` (OPT's
        # collect stage shifts its iterations; without it OPT overshot by up to one iteration).
        common = {"init_checkpoint": checkpoint, "utd": 5, "eval_episodes": args.eval_episodes, "env_steps_per_iteration": max(steps // 5, 1), "budget_env_steps": steps}
        methods = {
            "TD3": TD3Config().training(**common),
            "TD3+OPT": OPTConfig().training(
                **common, dataset=dataset, n_tau=n_tau, n_pretrain=2 * n_tau, pretrain_updates_per_iteration=2 * n_tau,
                kappa_start=args.kappa_start, kappa_end=args.kappa_end, kappa_steps=steps // 2,
            ),
        }
        finals: dict[str, list[float]] = {m: [] for m in methods}
        seconds: dict[str, float] = {m: 0.0 for m in methods}
        updates: dict[str, dict[str, int]] = {}
        flops: dict[str, float] = {}
        for seed in args.seeds:
            for name, cfg in methods.items():
                algo = cfg.copy(copy_frozen=False).environment(args.env).debugging(seed=seed).build_algo()
                t0 = time.perf_counter()
                while algo.num_env_steps < steps:
                    result = algo.train()
                seconds[name] += time.perf_counter() - t0
                finals[name].append(result["normalized_score"])
                if name == "TD3":
                    updates[name] = {"update": algo.num_updates, "env_steps": algo.num_env_steps}
                    flops.setdefault("TD3 update", learner_flops(algo, "run_updates", 4))
                else:
                    updates[name] = {"pretrain": algo.pretrain_done, "finetune": algo.num_updates - algo.pretrain_done, "env_steps": algo.num_env_steps}
                    flops.setdefault("TD3+OPT finetune update", learner_flops(algo, "finetune", 4, algo.current_kappa()))
                    flops.setdefault("TD3+OPT pretrain update", learner_flops(algo, "pretrain", 2))
                algo.stop()
                say(f"  {name:8s} seed {seed}: final normalised score {result['normalized_score']:6.1f}  ({seconds[name]:.0f}s so far)")
        ray.shutdown()

    rows = summarize(finals)
    ratio = seconds["TD3+OPT"] / seconds["TD3"]
    opt_flops = updates["TD3+OPT"]["finetune"] * flops["TD3+OPT finetune update"] + updates["TD3+OPT"]["pretrain"] * flops["TD3+OPT pretrain update"]
    flop_ratio = opt_flops / (updates["TD3"]["update"] * flops["TD3 update"])
    out = {
        "env": args.env, "dataset_quality": args.quality, "env_steps": steps, "n_tau": n_tau, "seeds": list(args.seeds),
        "offline_normalized_score": offline_score,
        "methods": {r.point: {"scores": r.scores, "mean": r.mean, "ci95": [r.ci_low, r.ci_high], "iqm": r.iqm, "wall_clock_s": seconds[r.point]} for r in rows},
        "opt_cost_ratio": round(ratio, 3),
        "updates_per_run": updates,
        "matmul_mflop_per_update": {k: round(v / 1e6, 1) for k, v in flops.items()},
        "finetune_update_flop_ratio": round(flops["TD3+OPT finetune update"] / flops["TD3 update"], 3),
        "training_flop_ratio": round(flop_ratio, 3),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print()
        print(to_markdown(rows, title=f"{args.env} {args.quality}: final normalised score after {steps} env steps (offline start {offline_score:.1f})"))
        print(f"\nwall-clock: TD3 {seconds['TD3']:.0f}s, TD3+OPT {seconds['TD3+OPT']:.0f}s → opt_cost_ratio {ratio:.2f} (the paper reports ≈ 1.5)")
        print("matrix-multiply MFLOP per update: " + ", ".join(f"{k} {v}" for k, v in out["matmul_mflop_per_update"].items()))
        print(f"FLOP ratio OPT/TD3: per fine-tuning update {out['finetune_update_flop_ratio']:.2f}, whole training {flop_ratio:.2f} (the floor of the cost ratio on a compute-bound CPU)")
    return 0
