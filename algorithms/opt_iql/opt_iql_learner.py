"""IQL+OPT's updates: OPT's online pre-training and κ-blend on IQL's expectile V, Q and AWR actor.

Notation: Q_off-pt, V_off-pt = `m.critics`, `m.value` (from the IQL offline phase); Q_on-pt,
V_on-pt = `m.critics_on`, `m.value_on` (new); Q̄ the Polyak targets of the Q ensembles; B_off
the dataset, B_on the online replay; τ the expectile, β the inverse temperature.

IQL's value losses of one pair ψ = (θ, φ) of Q_θ, V_φ on a minibatch, as in IQL's update:
    L_V(φ) = E[ |τ − 1(u < 0)| · u² ],   u = min_j Q̄_j(s, a) − V_φ(s)
    L_Q(θ) = ½ Σ_j E[ (Q_θ,j(s, a) − y)² ],   y = r + γ (1 − d) V_φ(s′)  (no gradient through y)
    L(ψ) = L_V(φ) + L_Q(θ)

Online pre-training (`pretrain`; only Q_on-pt, V_on-pt and Q̄_on change):
    L_pretrain(ψ_on) = L_off(ψ_on) + L_on(ψ_on − α ∇ L_off(ψ_on)),
the OPT objective on the joint parameters of Q_on-pt and V_on-pt, with L = L_V + L_Q above and
Q̄_on its Polyak target (updated after each step, as Q̄ is in IQL).

Fine-tuning (`update`): both pairs keep their IQL losses (V, then Q, then Polyak on both Q̄), and
the actor extracts the policy from the κ-blended advantage
    A_κ(s, a) = (1 − κ) (min_j Q̄_off,j(s, a) − V_off(s)) + κ (min_j Q̄_on,j(s, a) − V_on(s)),
    L_π = E[ min(exp(β · A_κ), 100) · (−log π(a|s)) ]   (‖π(s) − a‖² for a deterministic actor).

Choices where the OPT paper does not pin IQL down (its Section 4 gives the TD3 form, where κ
blends the critics in the actor's objective): (1) V is pre-trained with Q, since IQL's Q target
is V(s′) and a new Q needs a new V; the meta-adaptation is taken over their joint parameters;
(2) the target y inside L(ψ) uses the (inner-step adapted) V itself, without gradient, as IQL's
update uses the current V; (3) κ blends the advantages (equivalently Q̄ and V each) inside the
AWR weight, which is how IQL's actor reads its critics: at κ = 0 this is IQL, at κ = 1 IQL on
the online pair only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from algorithms.common.online_pretraining import BalancedReplayUpdates, functional, kappa_blend, pretrain_loss
from algorithms.common.targets import SoftUpdater
from algorithms.iql.iql_learner import IQLUpdates, advantage_weights, awr_actor_loss, expectile_loss, q_loss


def iql_value_loss(q: nn.Module, v: nn.Module, q_target: nn.Module, psi: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                   expectile: float, gamma: float) -> torch.Tensor:
    """L(ψ) = L_V(φ) + L_Q(θ) of the pair (Q_θ = q, V_φ = v) at parameters ψ = {"q.…": θ, "v.…": φ}; `b` normalised."""
    s, a = b["obs"], b["actions"]
    with torch.no_grad():
        q_bar = q_target(s, a).min(dim=0).values
    u = q_bar - functional(v, psi, "v.", s)
    y = b["rewards"] + gamma * (1.0 - b["terminals"]) * functional(v, psi, "v.", b["next_obs"]).detach()
    return expectile_loss(u, expectile) + q_loss(functional(q, psi, "q.", s, a), y)


def blended_advantage(kappa: float, u_off: torch.Tensor, u_on: torch.Tensor) -> torch.Tensor:
    """A_κ = (1 − κ) A_off + κ A_on, A = min_j Q̄_j(s, a) − V(s) of each pair (no gradient)."""
    return kappa_blend(kappa, lambda: u_off, lambda: u_on).detach()


class OPTIQLUpdates(BalancedReplayUpdates, IQLUpdates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module, float]]:
        return {**IQLUpdates.optimizer_groups(module, config), "critic_on": (module.critics_on, config.critic_lr),
                "value_on": (module.value_on, config.value_lr), "density_ratio": (module.density_ratio, config.critic_lr)}

    def setup(self) -> None:
        super().setup()
        m, c = self.m, self.config
        self.pretrain_target_update = SoftUpdater([(m.critics_on_target, m.critics_on)], c.tau)
        self.target_update = SoftUpdater([(m.critics_target, m.critics), (m.critics_on_target, m.critics_on)], c.tau)

    def batches(self, step: str, num_updates: int, batch_size: int) -> Iterator[Any]:
        if step == "pretrain":
            return self.pretrain_batches(num_updates, batch_size)
        return super().batches(step, num_updates, batch_size)

    def joint_step(self, names: tuple[str, ...], loss: torch.Tensor) -> None:
        """One backward of a loss over disjoint networks, then each one's optimiser step."""
        opts = [self.optimizers[n] for n in names]
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()

    def online_params(self) -> dict[str, nn.Parameter]:
        """ψ_on: Q_on-pt's parameters as `q.…`, V_on-pt's as `v.…`."""
        m = self.m
        return {**{f"q.{k}": p for k, p in m.critics_on.named_parameters()}, **{f"v.{k}": p for k, p in m.value_on.named_parameters()}}

    # -- stage 2: online pre-training of (Q_on-pt, V_on-pt) -------------------------------------
    def pretrain(self, batches: tuple[dict, dict]) -> dict[str, torch.Tensor]:
        m, c = self.m, self.config
        b_off, b_on = (self.normalised(b) for b in batches)

        def loss_of(psi: dict, b: dict) -> torch.Tensor:
            return iql_value_loss(m.critics_on, m.value_on, m.critics_on_target, psi, b, c.expectile, c.gamma)

        loss = pretrain_loss(c.pretrain_objective, self.online_params(), loss_of, b_off, b_on, c.meta_lr, c.meta_first_order)
        self.joint_step(("critic_on", "value_on"), loss)
        self.pretrain_target_update()
        return {"pretrain_loss": loss.detach()}

    # -- stage 3: fine-tuning -------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor], kappa: float = 0.0) -> dict[str, torch.Tensor]:
        c, m = self.config, self.m
        b = self.normalised(batch)
        s, a, s_next = b["obs"], b["actions"], b["next_obs"]
        with torch.no_grad():
            v_next_off, v_next_on = m.value(s_next), m.value_on(s_next)
            q_bar_off, q_bar_on = m.critics_target(s, a).min(dim=0).values, m.critics_on_target(s, a).min(dim=0).values

        # 1. Expectile regression of each V towards its own target Q's minimum.
        u_off, u_on = q_bar_off - m.value(s), q_bar_on - m.value_on(s)
        v_off_loss, v_on_loss = expectile_loss(u_off, c.expectile), expectile_loss(u_on, c.expectile)
        self.joint_step(("value", "value_on"), v_off_loss + v_on_loss)

        # 2. Each Q towards r + γ (1 − d) V(s′) of its own pair; Polyak on both Q̄.
        not_done = c.gamma * (1.0 - b["terminals"])
        q_off_loss = q_loss(m.critics(s, a), b["rewards"] + not_done * v_next_off)
        q_on_loss = q_loss(m.critics_on(s, a), b["rewards"] + not_done * v_next_on)
        self.joint_step(("critic", "critic_on"), q_off_loss + q_on_loss)
        self.target_update()

        # 3. AWR on the κ-blended advantage (from step 1's u, detached).
        a_kappa = blended_advantage(kappa, u_off, u_on)
        loss_pi = awr_actor_loss(m.actor, s, a, advantage_weights(a_kappa, c.beta, c.max_weight))
        self.set_actor_lr()
        self.step("actor", loss_pi)
        out = {"v_off_loss": v_off_loss.detach(), "v_on_loss": v_on_loss.detach(), "q_off_loss": q_off_loss.detach(),
               "q_on_loss": q_on_loss.detach(), "actor_loss": loss_pi.detach(), "advantage": a_kappa.mean()}
        if "idx" in batch:
            out["density_ratio_loss"] = self.update_density_ratio(b, batch["idx"])
        self.num_updates += 1
        return out
