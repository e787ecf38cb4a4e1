"""BC's updates (CORL any_percent_bc): one actor step per minibatch.

    deterministic head:  L(π) = E_(s,a)~D ‖π(s) − a‖²        (F.mse_loss, mean over batch and action dims)
    Gaussian head:       L(π) = E_(s,a)~D [−log π(a|s)]

x%-BC (`top_fraction` < 1) trains on the best ⌊x·E⌋ (at least 1) of the dataset's E episodes,
ranked by discounted return Σ_t γ^t r_t, as CORL's keep_best_trajectories.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from algorithms.common.learner import Updates
from algorithms.common.networks import GaussianActor
from algorithms.common.replay import episode_ids


def bc_mse_loss(actor: nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """‖π(s) − a‖², averaged over batch and action dimensions, in environment units (CORL)."""
    return F.mse_loss(actor(obs), actions)


def bc_nll_loss(actor: GaussianActor, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """−log π(a|s) of the dataset's actions, averaged over the batch."""
    return -actor.log_prob(obs, actions).mean()


def discounted_episode_returns(rewards: np.ndarray, episode: np.ndarray, gamma: float) -> np.ndarray:
    """Σ_t γ^t r_t of each episode (episodes are contiguous runs of equal `episode` ids)."""
    starts = np.flatnonzero(np.r_[True, np.diff(episode) != 0])
    t = np.arange(len(rewards)) - np.repeat(starts, np.diff(np.r_[starts, len(rewards)]))
    return np.add.reduceat(np.asarray(rewards, dtype=np.float64) * gamma ** t, starts)


def keep_best_episodes(arrays: dict[str, np.ndarray], fraction: float, gamma: float) -> dict[str, np.ndarray]:
    """The rows of the best max(1, ⌊fraction · E⌋) episodes by discounted return (ties: the earlier episode)."""
    episode = episode_ids(arrays["terminals"], arrays["truncations"])
    returns = discounted_episode_returns(arrays["rewards"], episode, gamma)
    n_keep = max(1, int(fraction * len(returns)))
    best = np.argsort(-returns, kind="stable")[:n_keep]
    rows = np.isin(episode, best.astype(episode.dtype))
    n = len(arrays["rewards"])
    return {k: (v[rows] if len(v) == n else v) for k, v in arrays.items()}


class BCUpdates(Updates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module, float]]:
        return {"actor": (module.actor, config.actor_lr)}

    @classmethod
    def prepare_dataset(cls, arrays: dict[str, np.ndarray], config: Any, module: nn.Module) -> dict[str, np.ndarray]:
        if config.top_fraction >= 1.0:
            return arrays
        return keep_best_episodes(arrays, config.top_fraction, config.gamma)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        obs = self.m.normalizer(batch["obs"])
        actor = self.m.actor
        if isinstance(actor, GaussianActor):
            loss = bc_nll_loss(actor, obs, batch["actions"])
        else:
            loss = bc_mse_loss(actor, obs, batch["actions"])
        self.step("actor", loss)
        return {"actor_loss": loss.detach()}
