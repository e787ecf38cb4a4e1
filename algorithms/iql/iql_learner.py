"""IQL's updates (Kostrikov et al. 2022; CORL finetune/iql.py), in the paper's order per minibatch:

    V(s′) computed first, without gradient;
    1. value:  u = min_j Q̄_j(s, a) − V(s),   L_V = E[ |τ − 1(u < 0)| · u² ]          (expectile τ)
    2. Q:      y = r + γ (1 − d) V(s′),       L_Q = ½ Σ_{j=1,2} E[(Q_j(s, a) − y)²]
               then Polyak Q̄ ← (1 − ρ) Q̄ + ρ Q   (targets on Q only)
    3. actor:  w = min(exp(β · u), 100) with u from step 1, detached,
               L_π = E[ w · (−log π(a|s)) ]   (Gaussian actor)
               L_π = E[ w · ‖π(s) − a‖² ]     (deterministic actor; actions in [−1, 1] units)
The actor's learning rate follows a cosine from `actor_lr` to 0 over the phase's update budget
(CORL's CosineAnnealingLR over the offline iterations), or stays constant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from algorithms.common.learner import Updates
from algorithms.common.networks import GaussianActor
from algorithms.common.replay import episode_ids
from algorithms.common.targets import SoftUpdater

EXP_ADV_MAX = 100.0  # CORL's clip of the advantage weights
REWARD_HORIZON = 1000.0  # CORL modify_reward: max_episode_steps of the MuJoCo tasks


def expectile_loss(u: torch.Tensor, tau: float) -> torch.Tensor:
    """E[|τ − 1(u < 0)| · u²] (CORL's asymmetric_l2_loss)."""
    return (torch.abs(tau - (u < 0).float()) * u.pow(2)).mean()


def q_loss(q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over the ensemble's members of MSE(Q_j, y), for [n, B] values (½ Σ_j for twin Q)."""
    return (q - y.unsqueeze(0)).pow(2).mean()


def advantage_weights(u: torch.Tensor, beta: float, max_weight: float = EXP_ADV_MAX) -> torch.Tensor:
    """min(exp(β · u), max_weight), without gradient."""
    return torch.exp(beta * u.detach()).clamp(max=max_weight)


def awr_actor_loss(actor: nn.Module, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """E[w · (−log π(a|s))] for a Gaussian actor, E[w · ‖π(s) − a‖²] (in [−1, 1] units) for a deterministic one."""
    if isinstance(actor, GaussianActor):
        bc = -actor.log_prob(obs, actions)
    else:
        bc = (actor.to_unit(actor(obs)) - actor.to_unit(actions)).pow(2).sum(-1)
    return (weights * bc).mean()


def cosine_lr(lr0: float, t: int, total: int) -> float:
    """lr0 · (1 + cos(π t / T)) / 2, held at 0 after T (CosineAnnealingLR with η_min = 0)."""
    return lr0 * 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))


def reward_scale(rewards: np.ndarray, terminals: np.ndarray, truncations: np.ndarray) -> float:
    """1000 / (max − min episode return) of a dataset (CORL modify_reward for MuJoCo)."""
    episode = episode_ids(terminals, truncations)
    starts = np.flatnonzero(np.r_[True, np.diff(episode) != 0])
    returns = np.add.reduceat(np.asarray(rewards, dtype=np.float64), starts)
    spread = float(returns.max() - returns.min())
    if spread <= 0:
        raise ValueError(f"normalize_reward divides by the spread of the dataset's episode returns, but all {len(returns)} "
                         f"episode(s) return {returns.max():.3f}: set normalize_reward false for this dataset")
    return REWARD_HORIZON / spread


def schedule_length(config: Any) -> int | None:
    """Updates over which the actor's lr anneals, or None for a constant lr.

    `auto`: cosine in offline phases over `budget_updates` (CORL: the offline iterations),
    constant in online and hybrid ones; `cosine` in an online / hybrid phase anneals over the
    updates its env-step budget buys: (budget − learning_starts of a fresh phase) × utd."""
    kind = config.actor_lr_schedule
    if kind == "auto":
        kind = "cosine" if config.paradigm == "offline" else "constant"
    if kind == "constant":
        return None
    if config.paradigm == "offline":
        total = config.budget_updates
    elif config.budget_env_steps is None:
        total = None
    else:
        warmup = 0 if config.init_checkpoint else config.learning_starts
        total = max(0, config.budget_env_steps - warmup) * config.utd
    return total if total else None


class IQLUpdates(Updates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module, float]]:
        return {"actor": (module.actor, config.actor_lr), "critic": (module.critics, config.critic_lr), "value": (module.value, config.value_lr)}

    @classmethod
    def prepare_dataset(cls, arrays: dict[str, np.ndarray], config: Any, module: nn.Module) -> dict[str, np.ndarray]:
        if not config.normalize_reward:
            return arrays
        scale = reward_scale(arrays["rewards"], arrays["terminals"], arrays["truncations"])
        module.reward_scale.fill_(scale)
        return {**arrays, "rewards": (arrays["rewards"] * scale).astype(np.float32)}

    def setup(self) -> None:
        c = self.config
        self.target_update = SoftUpdater([(self.m.critics_target, self.m.critics)], c.tau)
        self.lr_steps = schedule_length(c)
        # The dataset's reward scale, fixed before any warm start, so online rows match its rows.
        self.dataset_reward_scale = float(self.m.reward_scale) if c.normalize_reward and self.sampler.offline is not None else None

    def prepare_transitions(self, transitions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Online rewards get the dataset's transform (CORL modify_reward_online)."""
        if not self.config.normalize_reward:
            return transitions
        if self.dataset_reward_scale is not None:  # hybrid: the scale of the dataset rows in this replay
            self.m.reward_scale.fill_(self.dataset_reward_scale)
        scale = float(self.m.reward_scale)  # online: the scale carried by the warm start
        return {**transitions, "rewards": (np.asarray(transitions["rewards"]) * scale).astype(np.float32)}

    def run(self, num_updates: int, step: str = "update", updates_done: int | None = None, **params: Any) -> dict[str, float]:
        """`updates_done`: the algorithm's update counter (restored with its checkpoints), so the
        lr schedule continues where it was after a restore."""
        if updates_done is not None:
            self.num_updates = updates_done
        out = super().run(num_updates, step, **params)
        if out:
            out["actor_lr"] = self.optimizers["actor"].param_groups[0]["lr"]
        return out

    def set_actor_lr(self) -> None:
        if self.lr_steps is not None:
            lr = cosine_lr(self.config.actor_lr, self.num_updates, self.lr_steps)
            for group in self.optimizers["actor"].param_groups:
                group["lr"] = lr

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c, m = self.config, self.m
        b = self.normalised(batch)
        s, a, s_next = b["obs"], b["actions"], b["next_obs"]
        with torch.no_grad():
            v_next = m.value(s_next)

        # 1. Expectile regression of V towards the target twin Q's minimum.
        with torch.no_grad():
            q_target = m.critics_target(s, a).min(dim=0).values
        u = q_target - m.value(s)
        loss_v = expectile_loss(u, c.expectile)
        self.step("value", loss_v)

        # 2. Q towards r + γ (1 − d) V(s′); Polyak on Q only.
        y = b["rewards"] + c.gamma * (1.0 - b["terminals"]) * v_next
        loss_q = q_loss(m.critics(s, a), y)
        self.step("critic", loss_q)
        self.target_update()

        # 3. Advantage-weighted regression of the actor, weights from step 1's u.
        weights = advantage_weights(u, c.beta, c.max_weight)
        loss_pi = awr_actor_loss(m.actor, s, a, weights)
        self.set_actor_lr()
        self.step("actor", loss_pi)
        self.num_updates += 1
        return {"value_loss": loss_v.detach(), "critic_loss": loss_q.detach(), "actor_loss": loss_pi.detach(), "advantage": u.detach().mean()}
