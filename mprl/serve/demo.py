"""A small, real run to serve: a two-phase TD3 pipeline run by the phase scheduler.

The Serve tests and `mprl bench serve` need a run with a lineage: `pretrain` (two
checkpoints) and `finetune` (one checkpoint), the second seeded from the first's last
checkpoint, at budgets of seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SMALL_TASK = {"hidden": [64, 64], "actor_lr": 1e-3, "critic_lr": 1e-3}


def demo_pipeline(storage_root: str | Path, env_id: str, env_steps_per_iteration: int, eval_episodes: int, hidden: list[int]) -> dict[str, Any]:
    n = env_steps_per_iteration
    config = {**SMALL_TASK, "hidden": hidden, "utd": 1}
    evaluation = {"interval": n, "episodes": eval_episodes}
    return {
        "name": "serve-demo", "storage_path": str(storage_root), "videos": {"selected": False},
        "phases": [
            {"name": "pretrain", "algorithm": "td3", "env": env_id, "budget": {"env_steps": 2 * n}, "evaluation": evaluation,
             "config": {**config, "random_steps": n, "learning_starts": n}, "select": "last"},
            {"name": "finetune", "algorithm": "td3", "env": env_id, "init_from": "pretrain", "budget": {"env_steps": n},
             "evaluation": evaluation, "config": config},
        ],
    }


def build_demo_run(
    storage_root: str | Path,
    env_id: str = "InvertedPendulum-v5",
    *,
    env_steps_per_iteration: int = 200,
    eval_episodes: int = 2,
    hidden: list[int] | None = None,
) -> dict[str, Any]:
    """Run the demo pipeline under `storage_root` (on the current Ray, or an embedded one).

    Returns {"run_id", "run_dir", "checkpoints": [checkpoint ids in training order], "env"}.
    """
    from mprl.lineage import LineageStore
    from mprl.pipeline.driver import run_pipeline
    from mprl.spec import parse_pipeline

    spec = parse_pipeline(demo_pipeline(storage_root, env_id, env_steps_per_iteration, eval_episodes, hidden or SMALL_TASK["hidden"]), source="serve-demo")
    result = run_pipeline(spec, write=lambda _: None)
    with LineageStore(result.run_dir, readonly=True) as store:
        checkpoints = [c["checkpoint_id"] for node in ("pretrain", "finetune") for c in store.checkpoints(node)]
    return {"run_id": result.run_id, "run_dir": result.run_dir, "checkpoints": checkpoints, "env": env_id}
