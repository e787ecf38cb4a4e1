"""SAC's updates (Haarnoja et al. 2018, "SAC Algorithms and Applications"), and the SAC pieces
that CQL, Cal-QL, RLPD and Off2On reuse (import them from here).

With a′ ~ π(·|s′), ã ~ π(·|s) reparameterised, log π in [-1, 1] action units (tanh-Gaussian):

    critic       y = r + γ (1 − d) [ min_j Q̄_j(s′, a′) − α log π(a′|s′) ]   (the α term: backup_entropy)
                 J_Q = Σ_j E (Q_j(s, a) − y)²
    actor        J_π = E [ α log π(ã|s) − min_j Q_j(s, ã) ]
    temperature  J(α) = E [ −log α · (log π(ã|s) + H̄) ],   H̄ = −|A|
    targets      θ̄ ← τ θ + (1 − τ) θ̄, every update

in this order each update. The temperature loss is written on log α, as in the original code
(softlearning) and CORL's CQL/Cal-QL; its gradient has the sign of the paper's J(α) on α.
The critic loss has no ½ (Σ_j MSE, as CORL and TD3), so lr 3e-4 means the same as theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from algorithms.common.learner import Updates
from algorithms.common.networks import CriticEnsemble, GaussianActor
from algorithms.common.targets import SoftUpdater
from algorithms.common.td3_core import td_loss


def min_q(q: torch.Tensor) -> torch.Tensor:
    """min_j over an ensemble's [n, B] values (SAC's clipped double Q)."""
    return q.min(dim=0).values


def sac_target(
    actor: GaussianActor,
    critics_target: CriticEnsemble,
    next_obs_n: torch.Tensor,
    rewards: torch.Tensor,
    terminals: torch.Tensor,
    gamma: float,
    alpha: torch.Tensor | float,
    backup_entropy: bool = True,
    reduce: Callable[[torch.Tensor], torch.Tensor] = min_q,
) -> torch.Tensor:
    """y = r + γ (1 − d) [reduce_j Q̄_j(s′, a′) − α log π(a′|s′)], a′ ~ π(s′) from the current actor;
    without `backup_entropy` the α term is dropped (CQL's default). `reduce` lets RLPD take
    the min over a random subset of a larger ensemble."""
    with torch.no_grad():
        next_a, next_log_pi = actor.sample(next_obs_n)
        q_next = reduce(critics_target(next_obs_n, next_a))
        if backup_entropy:
            q_next = q_next - alpha * next_log_pi
        return rewards + gamma * (1.0 - terminals) * q_next


def sac_actor_loss(actor: GaussianActor, critics: CriticEnsemble, obs_n: torch.Tensor, alpha: torch.Tensor | float,
                   reduce: Callable[[torch.Tensor], torch.Tensor] = min_q) -> tuple[torch.Tensor, torch.Tensor]:
    """(J_π = E[α log π(ã|s) − min_j Q_j(s, ã)], log π(ã|s)); log π is returned for the temperature step."""
    a, log_pi = actor.sample(obs_n)
    q = reduce(critics(obs_n, a))
    return (alpha * log_pi - q).mean(), log_pi


def temperature_loss(log_alpha: torch.Tensor, log_pi: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """J(α) = E[−log α · (log π + H̄)] with log π held fixed: α grows while the entropy −log π is below H̄."""
    return -(log_alpha * (log_pi.detach() + target_entropy)).mean()


def default_target_entropy(act_dim: int) -> float:
    """H̄ = −|A| (the SAC paper's heuristic, RLlib's "auto")."""
    return -float(act_dim)


class SACUpdates(Updates):
    """Critic, actor, temperature, then Polyak targets, once per minibatch.

    A SAC variant (Off2On) changes only what its hooks hold: `bellman_target` and `critic_td`
    (the critic loss), `actor_reduce`, and `after_temperature` (a step of its own before the
    targets move)."""

    #: y from the target critics (`sac_target`'s signature)
    bellman_target: Callable[..., torch.Tensor] = staticmethod(sac_target)
    #: J_Q from Q(s, a) and y
    critic_td: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = staticmethod(td_loss)
    #: how the actor's loss reduces the critics' values at ã (min_j: clipped double Q)
    actor_reduce: Callable[[torch.Tensor], torch.Tensor] = staticmethod(min_q)

    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module | list[nn.Parameter], float]]:
        return {
            "critic": (module.critics, config.critic_lr),
            "actor": (module.actor, config.actor_lr),
            "alpha": ([module.log_alpha], config.alpha_lr),
        }

    def setup(self) -> None:
        c = self.config
        self.target_entropy = default_target_entropy(self.m.act_dim) if c.target_entropy is None else float(c.target_entropy)
        self.soft_update = SoftUpdater([(self.m.critics_target, self.m.critics)], c.tau)

    def after_temperature(self, b: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A variant's own step on the normalised (`b`) and raw (`batch`) minibatch; its metrics."""
        return {}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m, c = self.m, self.config
        b = self.normalised(batch)
        alpha = m.log_alpha.exp().detach()

        # 1. Critics: soft Bellman residual against the target critics.
        y = self.bellman_target(m.actor, m.critics_target, b["next_obs"], b["rewards"], b["terminals"], c.gamma, alpha, c.backup_entropy)
        q = m.critics(b["obs"], b["actions"])
        critic_loss = self.critic_td(q, y)
        self.step("critic", critic_loss)

        # 2. Actor, on the updated critics (frozen: its backward pass computes no critic gradients).
        m.critics.requires_grad_(False)
        actor_loss, log_pi = sac_actor_loss(m.actor, m.critics, b["obs"], alpha, self.actor_reduce)
        self.step("actor", actor_loss)
        m.critics.requires_grad_(True)

        # 3. Temperature, from the same actions' log π.
        metrics = {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(), "q_mean": q.detach().mean(),
                   "entropy": -log_pi.detach().mean(), "alpha": alpha}
        if c.learn_alpha:
            alpha_loss = temperature_loss(m.log_alpha, log_pi, self.target_entropy)
            self.step("alpha", alpha_loss)
            metrics["alpha_loss"] = alpha_loss.detach()
        metrics.update(self.after_temperature(b, batch))

        # 4. Targets.
        self.soft_update()
        return metrics
