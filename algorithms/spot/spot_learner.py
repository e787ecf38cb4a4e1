"""SPOT's updates (Wu et al. 2022; CORL `finetune/spot.py`, thuml/SPOT `SPOT.py`).

Stage 1, `vae_update` (dataset minibatches only): the behaviour model's loss
    L_VAE = E_(s,a)~D [ mean_j (â_j − a_j)² + β · mean_k KL(q(z|s,a) ‖ N(0, I)) ].
Stage 2, `update` (TD3 with a density penalty): the clipped double-Q critic step every update,
and every `policy_delay` updates the actor step
    L_π = −Q_1(s, π(s)) / mean|Q_1(s, π(s))| + λ · ELBO_loss(s, π(s)),
where ELBO_loss ≈ −log π_β(π(s)|s) up to scale and constant (one z sample), then the targets.
The VAE is frozen in stage 2. Actions enter the VAE in [-1, 1] units (equal to CORL's
env units when the action box is [-1, 1], as on MuJoCo).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from algorithms.common.learner import Updates
from algorithms.common.schedules import decayed
from algorithms.common.targets import SoftUpdater
from algorithms.common.td3_core import TD3Hparams, critic_loss, td3_target


def vae_loss(vae: nn.Module, obs_n: torch.Tensor, a_unit: torch.Tensor, beta: float) -> torch.Tensor:
    """L_VAE: the mean over the batch of the per-sample ELBO loss."""
    return vae.elbo_loss(obs_n, a_unit, beta).mean()


def spot_actor_loss(actor: nn.Module, critics: nn.Module, vae: nn.Module, obs_n: torch.Tensor, beta: float, lambd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_π, −log π_β estimate per sample): −Q_1/mean|Q_1| + λ · ELBO_loss(s, π(s))."""
    pi = actor(obs_n)
    q = critics.q1(obs_n, pi)
    neg_log_beta = vae.elbo_loss(obs_n, actor.to_unit(pi), beta)
    return -q.mean() / q.abs().mean().detach() + lambd * neg_log_beta.mean(), neg_log_beta


def cooled_lambda(lambd: float, lambd_end: float, t: float, horizon: float) -> float:
    """λ_t = λ · max(λ_end, 1 − t / T): the support constraint loosens as online data comes in."""
    return decayed(lambd, t, horizon, lambd_end)


class SPOTUpdates(Updates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module, float]]:
        return {"actor": (module.actor, config.actor_lr), "critic": (module.critics, config.critic_lr), "vae": (module.vae, config.vae_lr)}

    def setup(self) -> None:
        c, m = self.config, self.m
        self.hp = TD3Hparams(gamma=c.gamma, tau=c.tau, policy_noise=c.policy_noise, noise_clip=c.noise_clip, policy_delay=c.policy_delay)
        self.soft_update = SoftUpdater([(m.actor_target, m.actor), (m.critics_target, m.critics)], c.tau)
        self.td3_updates = 0

    def batches(self, step: str, num_updates: int, batch_size: int) -> Iterator[Any]:
        if step != "vae_update":
            return super().batches(step, num_updates, batch_size)
        data = self.sampler.offline  # the behaviour model learns the dataset's actions only
        return (data.sample(batch_size) for _ in range(num_updates))

    def vae_updates_done(self) -> int:
        return int(self.m.vae_updates.item())

    # -- stage 1 ------------------------------------------------------------------------
    def vae_update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m = self.m
        loss = vae_loss(m.vae, m.normalizer(batch["obs"]), m.actor.to_unit(batch["actions"]), self.config.beta)
        self.step("vae", loss)
        m.vae_updates += 1
        return {"vae_loss": loss.detach()}

    # -- stage 2 ------------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor], lambd: float | None = None) -> dict[str, torch.Tensor]:
        m, c = self.m, self.config
        lambd = c.lambd if lambd is None else lambd
        b = self.normalised(batch)
        y = td3_target(m, b["next_obs"], b["rewards"], b["terminals"], self.hp)
        loss_q = critic_loss(m, b["obs"], b["actions"], y)
        self.step("critic", loss_q)
        out = {"critic_loss": loss_q.detach()}
        self.td3_updates += 1
        if self.td3_updates % c.policy_delay == 0:
            m.critics.requires_grad_(False)
            m.vae.requires_grad_(False)
            loss_pi, neg_log_beta = spot_actor_loss(m.actor, m.critics, m.vae, b["obs"], c.beta, lambd)
            self.step("actor", loss_pi)
            m.critics.requires_grad_(True)
            m.vae.requires_grad_(True)
            self.soft_update()
            out.update(actor_loss=loss_pi.detach(), neg_log_beta=neg_log_beta.mean().detach(), neg_log_beta_max=neg_log_beta.max().detach())
        return out
