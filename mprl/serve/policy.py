"""A deterministic policy from an RLlib algorithm checkpoint, without building the Algorithm.

Building a whole Algorithm (learner group, env runners, evaluation env) to serve one actor
costs seconds and hundreds of MB per policy; the checkpoint already holds the RL module's
class, constructor arguments and weights, so the module is rebuilt from those alone
(inference-only where the module supports it) and called in batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mprl.errors import CheckpointError


@dataclass
class Policy:
    """obs batch [B, *obs_shape] → deterministic actions [B, *action_shape], in environment units."""

    module: torch.nn.Module
    checkpoint: str
    obs_shape: tuple[int, ...]
    action_shape: tuple[int, ...]
    action_low: np.ndarray
    action_high: np.ndarray
    env: str | None = None
    algorithm_class: str | None = None
    module_class: str = ""
    normalize_actions: bool = False
    clip_actions: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> np.ndarray:
        from mprl.evaluation import deterministic_actions

        o = torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32))
        if hasattr(self.module, "act"):
            return self.module.act(o).numpy()
        return deterministic_actions(self.module, o, self.normalize_actions, self.clip_actions)

    def act_one(self, obs: np.ndarray) -> np.ndarray:
        return self.act(np.asarray(obs, dtype=np.float32)[None])[0]

    def describe(self) -> dict[str, Any]:
        return {
            "env": self.env, "algorithm_class": self.algorithm_class, "module_class": self.module_class,
            "observation_shape": list(self.obs_shape), "action_shape": list(self.action_shape),
            "action_low": self.action_low.tolist(), "action_high": self.action_high.tolist(),
        }


def load_policy(checkpoint: str | Path) -> Policy:
    """The checkpoint's RL module with its weights, ready for `act` (raises CheckpointError)."""
    from algorithms.common.checkpoints import read_module_state
    from mprl.storage import local_checkpoint
    from mprl.transfer.snapshots import checkpoint_meta, module_ctor

    root = local_checkpoint(checkpoint)  # a remote checkpoint is downloaded once
    state = read_module_state(root)  # readable CheckpointError for missing / foreign / corrupt folders
    cls, kwargs = module_ctor(root, "pass a checkpoint written by an mprl phase.")
    try:
        # Inference-only: RLlib modules drop their critics (and need no target networks).
        module = cls(**{**kwargs, "inference_only": True})
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"Checkpoint '{root}': cannot rebuild its module {cls.__name__} ({type(e).__name__}: {e}).") from None
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise CheckpointError(f"Checkpoint '{root}' lacks weights its module {cls.__name__} needs: {', '.join(missing[:5])}. Pick another checkpoint.")
    try:
        module.load_state_dict({k: torch.as_tensor(np.asarray(state[k])) for k in own}, strict=True)
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"Checkpoint '{root}': its weights do not fit module {cls.__name__} ({type(e).__name__}: {e}).") from None
    module.eval()
    meta = checkpoint_meta(root)
    obs_space, act_space = kwargs["observation_space"], kwargs["action_space"]
    return Policy(
        module=module,
        checkpoint=str(root),
        obs_shape=tuple(int(d) for d in obs_space.shape),
        action_shape=tuple(int(d) for d in act_space.shape),
        action_low=np.asarray(act_space.low, dtype=np.float32),
        action_high=np.asarray(act_space.high, dtype=np.float32),
        env=meta.get("env"),
        algorithm_class=meta.get("algorithm_class"),
        module_class=cls.__name__,
        normalize_actions=bool(meta.get("normalize_actions")),
        clip_actions=bool(meta.get("clip_actions")),
        meta=meta,
    )
