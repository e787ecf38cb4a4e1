"""AWAC's updates (CORL finetune/awac.py): the critic step, then the advantage-weighted actor
step, then the Polyak update of the target critics, on every minibatch."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from algorithms.common.learner import Updates
from algorithms.common.networks import CriticEnsemble, GaussianActor
from algorithms.common.targets import SoftUpdater
from algorithms.common.td3_core import td_loss


@torch.no_grad()
def awac_target(actor: GaussianActor, critics_target: CriticEnsemble, next_obs: torch.Tensor, rewards: torch.Tensor,
                terminals: torch.Tensor, gamma: float) -> torch.Tensor:
    """y = r + γ (1 − d) min_j Q̄_j(s′, a′), a′ ~ π(·|s′): the policy's own next action, no entropy."""
    next_a, _ = actor.sample(next_obs)
    return rewards + gamma * (1.0 - terminals) * critics_target(next_obs, next_a).min(dim=0).values


@torch.no_grad()
def awac_weights(actor: GaussianActor, critics: CriticEnsemble, obs: torch.Tensor, actions: torch.Tensor,
                 awac_lambda: float, exp_adv_max: float) -> torch.Tensor:
    """w = min(exp(A/λ), exp_adv_max), A = min_j Q_j(s, a) − min_j Q_j(s, ã), ã ~ π(·|s); no gradient."""
    pi_a, _ = actor.sample(obs)
    v = critics(obs, pi_a).min(dim=0).values
    q = critics(obs, actions).min(dim=0).values
    return torch.exp((q - v) / awac_lambda).clamp_max(exp_adv_max)


def awac_actor_loss(actor: GaussianActor, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """L_π = −E[w · log π(a|s)] on the dataset's (or replay's) actions."""
    return -(weights * actor.log_prob(obs, actions)).mean()


class AWACUpdates(Updates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module, float]]:
        return {"actor": (module.actor, config.actor_lr), "critic": (module.critics, config.critic_lr)}

    def setup(self) -> None:
        self.soft_update = SoftUpdater([(self.m.critics_target, self.m.critics)], self.config.tau)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c, m = self.config, self.m
        b = self.normalised(batch)
        s, a = b["obs"], b["actions"]

        y = awac_target(m.actor, m.critics_target, b["next_obs"], b["rewards"], b["terminals"], c.gamma)
        loss_q = td_loss(m.critics(s, a), y)
        self.step("critic", loss_q)

        w = awac_weights(m.actor, m.critics, s, a, c.awac_lambda, c.exp_adv_max)
        loss_pi = awac_actor_loss(m.actor, s, a, w)
        self.step("actor", loss_pi)

        self.soft_update()
        return {"critic_loss": loss_q.detach(), "actor_loss": loss_pi.detach(), "awac_weight": w.mean(), "q_target": y.mean()}
