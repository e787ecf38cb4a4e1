"""SPOT+OPT's updates: OPT's online pre-training and κ-blend on SPOT's TD3 + density-penalty learner.

Notation as in the OPT paper: Q_off-pt = `m.critics` (SPOT's offline critics), Q_on-pt =
`m.critics_on`, B_off the dataset, B_on the online replay, κ the weight of Q_on-pt.

Online pre-training (`pretrain`; only Q_on-pt's parameters ψ and its target change), as on TD3:
    L_pretrain(ψ) = L_off(ψ) + L_on(ψ − α ∇_ψ L_off(ψ)),
L the TD3 TD loss Σ_i MSE(Q_i(s, a), y) against y = r + γ(1 − d) min_i Q̄_on,i(s′, π̄(s′) + ε).

Fine-tuning (`update`): both critics keep their TD3 losses; every `policy_delay` updates SPOT's
actor loss with the blended critic
    q_kappa = (1 − κ) Q_off-pt,1(s, π(s)) + κ Q_on-pt,1(s, π(s)),
    L_π = −q_kappa / mean|q_kappa| + λ · ELBO_loss(s, π(s)),
with SPOT's normalisation applied to the blend (one scale for the one objective) and λ decayed
online exactly as in SPOT. The VAE stays frozen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from algorithms.common.online_pretraining import BalancedReplayUpdates, kappa_blend, pretrain_loss
from algorithms.common.targets import SoftUpdater
from algorithms.common.td3_core import smoothed_target_action, td3_target, td_loss
from algorithms.spot.spot_learner import SPOTUpdates


def opt_spot_actor_loss(actor: nn.Module, q_off: nn.Module, q_on: nn.Module, vae: nn.Module, obs_n: torch.Tensor, beta: float, lambd: float,
                        kappa: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_π, −log π_β estimate per sample): −q_kappa / mean|q_kappa| + λ · ELBO_loss(s, π(s)),
    q_kappa = (1 − κ) Q_off-pt,1(s, π(s)) + κ Q_on-pt,1(s, π(s)) (a critic of weight exactly 0 is not evaluated)."""
    pi = actor(obs_n)
    q_kappa = kappa_blend(kappa, lambda: q_off.q1(obs_n, pi), lambda: q_on.q1(obs_n, pi))
    neg_log_beta = vae.elbo_loss(obs_n, actor.to_unit(pi), beta)
    return -q_kappa.mean() / q_kappa.abs().mean().detach() + lambd * neg_log_beta.mean(), neg_log_beta


class OPTSPOTUpdates(BalancedReplayUpdates, SPOTUpdates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module, float]]:
        return {**SPOTUpdates.optimizer_groups(module, config),
                "critic_on": (module.critics_on, config.critic_lr), "density_ratio": (module.density_ratio, config.critic_lr)}

    def setup(self) -> None:
        super().setup()
        m, c = self.m, self.config
        self.pretrain_target_update = SoftUpdater([(m.critics_on_target, m.critics_on)], c.tau)
        self.soft_update = SoftUpdater([(m.actor_target, m.actor), (m.critics_target, m.critics), (m.critics_on_target, m.critics_on)], c.tau)

    def batches(self, step: str, num_updates: int, batch_size: int) -> Iterator[Any]:
        if step == "pretrain":
            return self.pretrain_batches(num_updates, batch_size)
        return super().batches(step, num_updates, batch_size)

    # -- stage 2: online pre-training of Q_on-pt ---------------------------------------------
    def pretrain(self, batches: tuple[dict, dict]) -> dict[str, torch.Tensor]:
        m, c = self.m, self.config
        b_off, b_on = (self.normalised(b) for b in batches)
        for b in (b_off, b_on):  # the TD3 target of Q_on-pt: its own target copy, π_off's smoothed target action
            b["y"] = td3_target(m, b["next_obs"], b["rewards"], b["terminals"], self.hp, m.critics_on_target)

        def td_loss_of(psi: dict, b: dict) -> torch.Tensor:
            return td_loss(functional_call(m.critics_on, psi, (b["obs"], b["actions"])), b["y"])

        loss = pretrain_loss(c.pretrain_objective, dict(m.critics_on.named_parameters()), td_loss_of, b_off, b_on, c.meta_lr, c.meta_first_order)
        self.step("critic_on", loss)
        self.pretrain_target_update()
        return {"pretrain_loss": loss.detach()}

    # -- stage 3: fine-tuning -------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor], kappa: float = 0.0, lambd: float | None = None) -> dict[str, torch.Tensor]:
        m, c = self.m, self.config
        lambd = c.lambd if lambd is None else lambd
        b = self.normalised(batch)
        # Both critics on TD3 targets, one smoothed target action; disjoint parameters, one backward.
        next_a = smoothed_target_action(m, b["next_obs"], self.hp)
        q_off_loss = td_loss(m.critics(b["obs"], b["actions"]), td3_target(m, b["next_obs"], b["rewards"], b["terminals"], self.hp, m.critics_target, next_a))
        q_on_loss = td_loss(m.critics_on(b["obs"], b["actions"]), td3_target(m, b["next_obs"], b["rewards"], b["terminals"], self.hp, m.critics_on_target, next_a))
        opts = [self.optimizers["critic"], self.optimizers["critic_on"]]
        for o in opts:
            o.zero_grad(set_to_none=True)
        (q_off_loss + q_on_loss).backward()
        for o in opts:
            o.step()
        out = {"q_off_loss": q_off_loss.detach(), "q_on_loss": q_on_loss.detach()}
        if "idx" in batch:
            out["density_ratio_loss"] = self.update_density_ratio(b, batch["idx"])
        self.td3_updates += 1
        if self.td3_updates % c.policy_delay == 0:
            frozen = (m.critics, m.critics_on, m.vae)
            for net in frozen:
                net.requires_grad_(False)
            loss_pi, neg_log_beta = opt_spot_actor_loss(m.actor, m.critics, m.critics_on, m.vae, b["obs"], c.beta, lambd, kappa)
            self.step("actor", loss_pi)
            for net in frozen:
                net.requires_grad_(True)
            self.soft_update()
            out.update(actor_loss=loss_pi.detach(), neg_log_beta=neg_log_beta.mean().detach())
        return out
