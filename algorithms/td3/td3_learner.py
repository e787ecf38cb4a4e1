"""TD3's updates: the clipped double-Q critic step every update, the actor and targets every
`policy_delay` updates (the math is algorithms.common.td3_core, shared with TD3+BC and OPT)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from algorithms.common.learner import Updates
from algorithms.common.td3_core import TD3Hparams, TD3Updater


class TD3Updates(Updates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module, float]]:
        return {"actor": (module.actor, config.actor_lr), "critic": (module.critics, config.critic_lr)}

    def hparams(self) -> TD3Hparams:
        c = self.config
        return TD3Hparams(gamma=c.gamma, tau=c.tau, policy_noise=c.policy_noise, noise_clip=c.noise_clip, policy_delay=c.policy_delay)

    def setup(self) -> None:
        self.updater = TD3Updater(self.m, self.optimizers["actor"], self.optimizers["critic"], self.hparams(), step=self.step)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss_q, loss_pi = self.updater.update(batch)
        return {"critic_loss": loss_q} if loss_pi is None else {"critic_loss": loss_q, "actor_loss": loss_pi}
