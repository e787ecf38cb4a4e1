"""Deterministic evaluation episodes with per-episode seeds, so scores are reproducible."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch


@dataclass
class EvalResult:
    returns: list[float]
    lengths: list[int]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


def evaluate_policy(act: Callable[[np.ndarray], np.ndarray], env_id: str, episodes: int, seed: int = 10_000, env: gym.Env | None = None) -> EvalResult:
    """Run `episodes` episodes with `act` (obs → action, no exploration); episode i is seeded seed + i."""
    from mprl.envs import make_env  # deployment contexts (variant ids) included

    from mprl.episodes import run_episodes

    own_env = env is None
    env = env or make_env(env_id)
    try:
        done = run_episodes(env, act, seeds=lambda i: seed + i, episodes=episodes)
    finally:
        if own_env:
            env.close()
    return EvalResult(done.returns, done.lengths)


@torch.no_grad()
def deterministic_actions(module: torch.nn.Module, obs: torch.Tensor, normalize_actions: bool = False, clip_actions: bool = False) -> np.ndarray:
    """Deterministic actions for a batch of observations, in environment units.

    Modules with `act(obs)` (ours) give them directly. Other RLlib modules go through
    `forward_inference` → action distribution → its mode: tanh(mean) for a squashed
    Gaussian (RLlib's own `to_deterministic()` returns the *unsquashed* mean there), the mean
    for a Gaussian, argmax for categorical; then, as RLlib's env runners do, actions are
    mapped from [-1, 1] to the bounds (`normalize_actions`) or clipped (`clip_actions`).
    """
    from ray.rllib.core.columns import Columns

    if hasattr(module, "act"):
        return module.act(obs).cpu().numpy()
    out = module.forward_inference({Columns.OBS: obs})
    if Columns.ACTIONS in out:
        a = out[Columns.ACTIONS]
    else:
        from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian

        dist = module.get_inference_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        a = dist._squash(dist.loc) if isinstance(dist, TorchSquashedGaussian) else dist.to_deterministic().sample()
    a = a.cpu().numpy()
    space = module.action_space
    if normalize_actions and hasattr(space, "low"):
        a = space.low + (a + 1.0) * (space.high - space.low) / 2.0
        a = np.clip(a, space.low, space.high)
    elif clip_actions and hasattr(space, "low"):
        a = np.clip(a, space.low, space.high)
    return a


def torch_policy(module: torch.nn.Module, normalize_actions: bool = False, clip_actions: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy policy (one observation → one action) on the module's device, deterministic.

    Our modules are called through `act(obs_tensor)`; RLlib modules without it through
    `deterministic_actions` (which see), with the algorithm's `normalize_actions` / `clip_actions`.
    """
    device = next(module.parameters()).device

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device).unsqueeze(0)
        if hasattr(module, "act"):
            return module.act(o)[0].cpu().numpy()
        return deterministic_actions(module, o, normalize_actions, clip_actions)[0]

    return act
