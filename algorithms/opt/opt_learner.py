"""OPT's updates (Shin et al., ICML 2025): online pre-training of Q_on-pt, then fine-tuning.

Notation as in the paper: Q_off-pt = `m.critics` (from the offline phase), Q_on-pt =
`m.critics_on`, B_off = the offline dataset, B_on = the online replay, κ the weight of
Q_on-pt in the actor's objective.

Online pre-training (`pretrain`; only Q_on-pt's parameters ψ change):
    L_pretrain(ψ) = L_off(ψ) + L_on(ψ − α ∇_ψ L_off(ψ))
with L_off, L_on TD3 TD losses on minibatches of B_off and B_on; the inner step is
differentiated through (second order) unless `meta_first_order` is set.

Fine-tuning (`update`): both critics keep their TD losses; every `policy_delay` updates the actor takes
    L_π = −E_s[(1 − κ) Q_off-pt(s, π(s)) + κ Q_on-pt(s, π(s))].
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from algorithms.common.learner import Updates
from algorithms.common.online_pretraining import BalancedReplayUpdates, density_ratio_loss, meta_adaptation
from algorithms.common.targets import SoftUpdater
from algorithms.common.td3_core import TD3Hparams, smoothed_target_action, td3_target, td_loss

__all__ = ["OPTUpdates", "density_ratio_loss", "meta_objective"]


def meta_objective(critics: torch.nn.Module, b_off: dict, b_on: dict, y_off: torch.Tensor, y_on: torch.Tensor, alpha: float, first_order: bool = False) -> torch.Tensor:
    """L_off(ψ) + L_on(ψ − α ∇L_off(ψ)) for the ensemble `critics` (inputs normalised), TD3 TD losses
    against the fixed targets y_off, y_on."""

    def value_loss(psi: dict, b: dict) -> torch.Tensor:
        return td_loss(functional_call(critics, psi, (b["obs"], b["actions"])), b["y"])

    return meta_adaptation(dict(critics.named_parameters()), value_loss, {**b_off, "y": y_off}, {**b_on, "y": y_on}, alpha, first_order)


class OPTUpdates(BalancedReplayUpdates, Updates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module, float]]:
        return {
            "actor": (module.actor, config.actor_lr), "critic": (module.critics, config.critic_lr),
            "critic_on": (module.critics_on, config.critic_lr), "density_ratio": (module.density_ratio, config.critic_lr),
        }

    def setup(self) -> None:
        m, c = self.m, self.config
        self.hp = TD3Hparams(gamma=c.gamma, tau=c.tau, policy_noise=c.policy_noise, noise_clip=c.noise_clip, policy_delay=c.policy_delay)
        self.q_pt = m.critics_on if c.use_q_on else m.critics  # the critic pre-training trains
        self.q_pt_target = m.critics_on_target if c.use_q_on else m.critics_target
        self.pretrain_target_update = SoftUpdater([(self.q_pt_target, self.q_pt)], c.tau)
        self.finetune_target_update = SoftUpdater([(m.actor_target, m.actor), (m.critics_target, m.critics), (m.critics_on_target, m.critics_on)], c.tau)

    def target(self, b: dict[str, torch.Tensor], critics_target: torch.nn.Module, next_a: torch.Tensor | None = None) -> torch.Tensor:
        return td3_target(self.m, b["next_obs"], b["rewards"], b["terminals"], self.hp, critics_target, next_a)

    def batches(self, step: str, num_updates: int, batch_size: int) -> Iterator[Any]:
        if step != "pretrain":
            return super().batches(step, num_updates, batch_size)
        return self.pretrain_batches(num_updates, batch_size)  # one B_off and one B_on minibatch per update

    # -- stage 1: online pre-training -----------------------------------------------------
    def pretrain(self, batches: tuple[dict, dict]) -> dict[str, torch.Tensor]:
        c = self.config
        b_off, b_on = self.normalised(batches[0]), self.normalised(batches[1])
        y_off, y_on = self.target(b_off, self.q_pt_target), self.target(b_on, self.q_pt_target)
        if c.pretrain_objective == "meta":
            loss = meta_objective(self.q_pt, b_off, b_on, y_off, y_on, c.meta_lr, c.meta_first_order)
        elif c.pretrain_objective == "off_on_sum":  # ablation: no meta-adaptation term
            loss = td_loss(self.q_pt(b_off["obs"], b_off["actions"]), y_off) + td_loss(self.q_pt(b_on["obs"], b_on["actions"]), y_on)
        else:  # "on_only" ablation: B_on alone
            loss = td_loss(self.q_pt(b_on["obs"], b_on["actions"]), y_on)
        self.step("critic_on" if c.use_q_on else "critic", loss)
        self.pretrain_target_update()
        return {"pretrain_loss": loss.detach()}

    # -- stage 2: online fine-tuning ------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor], kappa: float = 0.0) -> dict[str, torch.Tensor]:
        m, c = self.m, self.config
        b = self.normalised(batch)
        out: dict[str, torch.Tensor] = {}
        # Both critics keep training on TD3 targets (one smoothed target action for both;
        # their parameters are disjoint, so one backward of the sum gives each its own gradient).
        next_a = smoothed_target_action(m, b["next_obs"], self.hp)
        q_off_loss = td_loss(m.critics(b["obs"], b["actions"]), self.target(b, m.critics_target, next_a))
        loss_q = q_off_loss
        if c.use_q_on:
            q_on_loss = td_loss(m.critics_on(b["obs"], b["actions"]), self.target(b, m.critics_on_target, next_a))
            loss_q = loss_q + q_on_loss
            out["q_on_loss"] = q_on_loss.detach()
        critic_opts = [self.optimizers[n] for n in (("critic", "critic_on") if c.use_q_on else ("critic",))]
        for o in critic_opts:
            o.zero_grad(set_to_none=True)
        loss_q.backward()
        for o in critic_opts:
            o.step()
        out["q_off_loss"] = q_off_loss.detach()
        if "idx" in batch:
            out["density_ratio_loss"] = self.update_density_ratio(b, batch["idx"])
        self.num_updates += 1
        if self.num_updates % c.policy_delay == 0:
            out["actor_loss"] = self.actor_step(b["obs"], kappa)
            self.finetune_target_update()
        return out

    def actor_step(self, obs_n: torch.Tensor, kappa: float) -> torch.Tensor:
        """L_π = −E[(1 − κ) Q_off-pt(s, π(s)) + κ Q_on-pt(s, π(s))]; critics frozen for it.

        A critic whose weight is exactly 0 (κ = 1, as on MuJoCo random; κ = 0, or no Q_on-pt)
        is not evaluated: its term adds exactly 0 to L_π and to ∇L_π, so nothing changes."""
        m = self.m
        kappa = kappa if self.config.use_q_on else 0.0
        critics = (m.critics, m.critics_on)
        for q in critics:
            q.requires_grad_(False)
        pi = m.actor(obs_n)
        q_off = m.critics.q1(obs_n, pi) if kappa < 1 else torch.zeros((), device=obs_n.device)
        q_on = m.critics_on.q1(obs_n, pi) if kappa > 0 else torch.zeros((), device=obs_n.device)
        loss = -((1 - kappa) * q_off + kappa * q_on).mean()
        self.step("actor", loss)
        for q in critics:
            q.requires_grad_(True)
        return loss.detach()
