"""Snapshots: a module's weights plus its role description, from a checkpoint, a live module or a config.

A checkpoint holds the module's constructor arguments next to its weights
(`learner_group/learner/rl_module/default_policy/class_and_ctor_args.pkl`), so the source's
roles are described from a freshly built module of the same class, then paired with the
saved weights (targets included, which `RLModule.from_checkpoint` would drop).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mprl.transfer.roles import ModuleRoles, describe_module


@dataclass
class Snapshot:
    """Weights (numpy, by state-dict key) and their roles; `meta` names algorithm, env, checkpoint."""

    roles: ModuleRoles | None  # None: a bare state dict, described as the target's module class
    state: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)


def _numpy_state(state: dict[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for k, v in state.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        out[k] = np.asarray(v)
    return out


def _load_pickle(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def build_module(cls: type, kwargs: dict[str, Any]) -> Any:
    """Build a module from its constructor arguments, with target networks as its learner would make them."""
    from ray.rllib.core.rl_module.apis import TargetNetworkAPI

    module = cls(**kwargs)
    if isinstance(module, TargetNetworkAPI):
        module.make_target_networks()
    return module


def checkpoint_meta(checkpoint: str | Path) -> dict[str, Any]:
    """Algorithm, env, action settings and reference returns recorded in an RLlib algorithm
    checkpoint (raises CheckpointError).

    Never a silent default: a policy served without its `normalize_actions` acts in the wrong
    units (a SAC policy would be served unscaled), so an unreadable description fails the load.
    """
    from mprl.errors import CheckpointError
    from mprl.storage import local_checkpoint

    root = local_checkpoint(checkpoint)
    meta: dict[str, Any] = {"checkpoint": str(checkpoint)}
    ctor_file = root / "class_and_ctor_args.pkl"
    try:
        algo = _load_pickle(ctor_file)
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint '{checkpoint}' has no algorithm description ('{ctor_file.name}'): cannot tell its environment and action settings. Pass an algorithm checkpoint written by an mprl phase.") from None
    except Exception as e:  # noqa: BLE001 - truncated, foreign or from a package not installed here
        raise CheckpointError(f"Checkpoint '{checkpoint}': cannot read its algorithm description '{ctor_file.name}' ({type(e).__name__}: {e}). Re-run the phase that wrote it, or pick another checkpoint.") from None
    try:
        meta["algorithm_class"] = algo["class"].__name__
        cfg = algo["ctor_args_and_kwargs"][0][0]
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise CheckpointError(f"Checkpoint '{checkpoint}': its algorithm description '{ctor_file.name}' is not an RLlib one ({type(e).__name__}: {e}).") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"Checkpoint '{checkpoint}': its algorithm description holds a {type(cfg).__name__} where RLlib writes the config dict.")
    meta["env"] = cfg.get("env") if isinstance(cfg.get("env"), str) else None
    meta["normalize_actions"] = cfg.get("normalize_actions")
    meta["clip_actions"] = cfg.get("clip_actions")
    meta["reference_scores"] = cfg.get("reference_scores")
    return meta


def module_ctor(root: Path, hint: str) -> tuple[type, dict[str, Any]]:
    """The RL module's class and constructor arguments recorded in an algorithm checkpoint;
    `hint` ends the missing-file message (raises CheckpointError)."""
    from algorithms.common.checkpoints import MODULE_SUBDIR
    from mprl.errors import CheckpointError

    ctor_file = root / MODULE_SUBDIR / "class_and_ctor_args.pkl"
    try:
        ctor = _load_pickle(ctor_file)
        cls, (_, kwargs) = ctor["class"], ctor["ctor_args_and_kwargs"]
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint '{root}' has no module description ('{ctor_file}'); {hint}") from None
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"Checkpoint '{root}': cannot read its module description ({type(e).__name__}: {e}). Is the package that defines it installed?") from None
    return cls, kwargs


def snapshot_from_checkpoint(checkpoint: str | Path, state: dict[str, Any] | None = None) -> Snapshot:
    """The module of an RLlib algorithm checkpoint, described by role (raises CheckpointError)."""
    from algorithms.common.checkpoints import read_module_state
    from mprl.errors import CheckpointError
    from mprl.storage import local_checkpoint

    root = local_checkpoint(checkpoint)
    state = _numpy_state(state if state is not None else read_module_state(root))
    meta = checkpoint_meta(root)
    cls, kwargs = module_ctor(root, "cannot tell the roles of its parameters. Pass a checkpoint written by an RLlib algorithm.")
    try:
        module = build_module(cls, {**kwargs, "inference_only": False})
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"Checkpoint '{root}': cannot rebuild its module to describe it ({type(e).__name__}: {e}). Is the package that defines it installed?") from None
    roles = describe_module(module, normalize_actions=meta.get("normalize_actions"))
    roles.shapes = {k: tuple(v.shape) for k, v in state.items()}
    meta.setdefault("module_class", roles.module_class)
    return Snapshot(roles, state, meta)


def snapshot_from_module(module: Any, normalize_actions: bool | None = None, **meta: Any) -> Snapshot:
    roles = describe_module(module, normalize_actions=normalize_actions)
    return Snapshot(roles, _numpy_state(module.state_dict()), {"module_class": roles.module_class, **meta})


def module_from_config(config: Any, env: str | None = None) -> Any:
    """The learner-side module an AlgorithmConfig builds for `env` (or the config's env), targets made."""
    from mprl.envs import make_env
    from mprl.errors import MprlError

    env_id = env or config.env
    if not isinstance(env_id, str):
        raise MprlError("The target algorithm needs an environment: pass --env (a Gymnasium id such as 'Hopper-v5').")
    try:
        gym_env = make_env(env_id)  # deployment contexts (variant ids) included
    except Exception as e:  # noqa: BLE001
        raise MprlError(f"Cannot make environment '{env_id}' ({type(e).__name__}: {e}).") from None
    try:
        spec = config.get_rl_module_spec(env=gym_env, inference_only=False)
    finally:
        gym_env.close()
    module = spec.build()
    from ray.rllib.core.rl_module.apis import TargetNetworkAPI

    if isinstance(module, TargetNetworkAPI):
        module.make_target_networks()
    return module


def snapshot_from_config(config: Any, env: str | None = None, algorithm: str | None = None) -> Snapshot:
    module = module_from_config(config, env)
    return snapshot_from_module(module, normalize_actions=getattr(config, "normalize_actions", None), algorithm=algorithm or type(config).__name__, env=env or config.env)
