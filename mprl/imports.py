"""`mprl import CHECKPOINT`: a pre-trained model made elsewhere becomes an asset of mprl.

The checkpoint is checked as `init_from` would check it (its module rebuilds, its weights fit,
its environment's spaces match), evaluated if asked, copied into a run folder of its own and
recorded there as the one checkpoint of a phase `import`. From then on its `ck-…` id works
wherever a checkpoint is accepted (`init_from`, `mprl transfer check`, `mprl video`, the
workbench's "continue with…"), and a phase that starts from it names it as its parent.

The run folder is written under a temporary name and renamed at the end: a failed import
leaves nothing behind, never a lineage without its checkpoint.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

from mprl.errors import MprlError

IMPORT_PHASE = "import"


def _catalogue_name(algorithm_class: str | None) -> str | None:
    """The catalogue entry whose RLlib Algorithm class wrote the checkpoint."""
    from mprl.catalogue import CATALOGUE

    for name, entry in CATALOGUE.items():
        try:
            if entry.new_config().algo_class.__name__ == algorithm_class:
                return name
        except Exception:  # noqa: BLE001, S112 - an entry that cannot build its config matches nothing
            continue
    return None


def import_checkpoint(checkpoint: str, storage_path: str, *, name: str | None = None, env: str | None = None,
                      episodes: int = 5, seed: int = 10_000, write: Any = print) -> dict[str, Any]:
    """Check, evaluate (`episodes` > 0) and register a checkpoint: its run id, folder and `ck-…` id."""
    from mprl.envs import make_env
    from mprl.evaluation import evaluate_policy
    from mprl.lineage import LineageStore
    from mprl.pipeline.driver import new_run_id
    from mprl.serve.policy import load_policy
    from mprl.storage import is_uri
    from mprl.transfer.snapshots import snapshot_from_checkpoint

    if is_uri(storage_path):
        raise MprlError(f"--storage-path {storage_path}: imports are recorded in a local or shared folder; pass one")
    if episodes < 0:
        raise MprlError(f"--episodes must be ≥ 0 (0: no evaluation), got {episodes}")
    source = Path(checkpoint).expanduser()
    if not source.is_dir():
        raise MprlError(f"Checkpoint {checkpoint} does not exist or is not a folder. Pass the folder an RLlib algorithm's save_to_path() wrote.")
    snapshot = snapshot_from_checkpoint(source)  # the module rebuilds and its roles are known (transfers need them)
    policy = load_policy(source)  # the inference module loads with these weights
    meta = snapshot.meta
    env_id = env or meta.get("env")
    if not env_id:
        raise MprlError(f"Checkpoint {checkpoint} does not name its environment: pass --env (a Gymnasium id such as 'Hopper-v5').")
    try:
        e = make_env(env_id)
    except Exception as exc:  # noqa: BLE001
        raise MprlError(f"Cannot make environment {env_id!r} ({type(exc).__name__}: {exc}). List them with `mprl envs`.") from None
    obs, act = tuple(e.observation_space.shape), tuple(e.action_space.shape)
    e.close()
    if (obs, act) != (policy.obs_shape, policy.action_shape):
        raise MprlError(f"Checkpoint {checkpoint} acts on observations {list(policy.obs_shape)} and actions {list(policy.action_shape)}, "
                        f"but {env_id} has {list(obs)} and {list(act)}: pass the --env it was trained on")
    algorithm = _catalogue_name(meta.get("algorithm_class")) or str(meta.get("algorithm_class") or "unknown").lower()
    result = None
    if episodes:
        write(f"evaluating {checkpoint} on {env_id}: {episodes} episode(s)")
        result = evaluate_policy(policy.act_one, env_id, episodes, seed)

    name = name or f"import-{source.name}"
    run_id = new_run_id(name)
    root = Path(storage_path).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{run_id}.partial"
    final = root / run_id
    try:
        ck_dir = tmp / IMPORT_PHASE / "checkpoint"
        shutil.copytree(source, ck_dir)
        now = time.time()
        spec = {"imported": {"source": str(source.resolve()), "env": env_id, "algorithm": algorithm,
                             "algorithm_class": meta.get("algorithm_class"), "imported_at": now}}
        with LineageStore(tmp) as store:
            store.create_run(run_id, name, spec, str(root))
            node = {"node_id": IMPORT_PHASE, "run_id": run_id, "phase": IMPORT_PHASE, "ordinal": 0, "branch": IMPORT_PHASE,
                    "algorithm": algorithm, "paradigm": "imported", "env": env_id, "budget_unit": "env_steps", "budget_value": 0,
                    "axis": "num_env_steps", "status": "succeeded", "started_at": now, "ended_at": now,
                    "result_json": None}
            store.upsert_node(node)
            store.record_trial("imported", IMPORT_PHASE, None, None, "succeeded", str(ck_dir))
            metrics = {"training_iteration": 0, "num_env_steps_lifetime": 0, "num_updates_lifetime": 0}
            if result is not None:
                metrics.update(evaluation_return=float(result.mean), evaluation_episodes=episodes)
            cid = store.record_checkpoint(run_id=run_id, node=node, trial_id="imported", path=str(ck_dir), metrics=metrics)
            store.mark_selected(cid, "imported")
            store.set_run_status("succeeded")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"run_id": run_id, "run_dir": str(final), "checkpoint_id": cid, "env": env_id, "algorithm": algorithm,
            "evaluation_return": None if result is None else float(result.mean), "episodes": episodes}


def is_import(spec: dict[str, Any]) -> bool:
    """Whether a run's recorded spec is that of an import (it has no phases to extend or resume)."""
    return isinstance(spec, dict) and "imported" in spec


def list_imported(storage_path: str | Path) -> list[dict[str, Any]]:
    """The imported checkpoints under a storage path, oldest first (the workbench's asset list)."""
    import json

    from mprl.lineage import list_runs, open_lineage

    out = []
    if not Path(storage_path).is_dir():
        return out
    for r in list_runs(storage_path):
        spec = json.loads(r["spec_json"] or "{}")
        if not is_import(spec):
            continue
        with open_lineage(r["run_dir"]) as store:
            for c in store.checkpoints():
                out.append({"policy_id": c["checkpoint_id"], "run_id": r["run_id"], "name": r["name"], "env": c["env"],
                            "algorithm": c["algorithm"], "evaluation_return": c["evaluation_return"], "source": spec["imported"]["source"],
                            "created_at": c["created_at"]})
    return out


def cmd_import(args: argparse.Namespace) -> int:
    import logging

    logging.getLogger("ray._common.deprecation").setLevel(logging.ERROR)  # RLlib's notice on every module build
    out = import_checkpoint(args.checkpoint, args.storage_path, name=args.name, env=args.env, episodes=args.episodes, seed=args.seed)
    score = f", evaluation return {out['evaluation_return']:.1f} over {out['episodes']} episode(s)" if out["evaluation_return"] is not None else ""
    print(f"imported {args.checkpoint} as {out['checkpoint_id']} ({out['algorithm']} on {out['env']}{score})\n"
          f"run {out['run_id']}: {out['run_dir']}\n"
          f"use it: `init_from: {{checkpoint: {out['checkpoint_id']}}}` (storage_path {args.storage_path}), "
          f"`mprl transfer check {out['checkpoint_id']} --to ALGORITHM --storage-path {args.storage_path}`, or 'continue with…' on the page")
    return 0


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("import", help="register a pre-trained checkpoint made elsewhere: checked, evaluated, given a ck-… id and a lineage")
    p.add_argument("checkpoint", help="an RLlib algorithm checkpoint folder (new API stack, as `Algorithm.save_to_path()` writes)")
    p.add_argument("--name", help="the import's name (default import-<folder name>)")
    p.add_argument("--env", help="its environment, if the checkpoint does not record one (or to evaluate it on a variant)")
    p.add_argument("--episodes", type=int, default=5, help="evaluation episodes of its deterministic policy (0: none)")
    p.add_argument("--seed", type=int, default=10_000, help="first evaluation episode's seed")
    p.add_argument("--storage-path", default="./mprl_results", help="where runs are (default ./mprl_results)")
    p.set_defaults(func=cmd_import)
