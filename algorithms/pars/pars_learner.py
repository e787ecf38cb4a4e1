"""PARS's updates (Kim et al. 2025): TD3+BC with RS-LN and PA, in the paper's notation.

Per minibatch, with c the reward scale and S a fresh random subset of the target ensemble:
    y      = c·r + γ (1 − d) min_{i∈S} Q̄_i(s′, clip(π̄(s′) + clip(ε, −c_ε, c_ε)))
    L_TD   = Σ_i E[(Q_i(s, a) − y)²]
    L_PA   = Σ_i E[(Q_i(s, a_I) − Q_min)²],  a_I ~ U([−2L, −L] ∪ [L, 2L]) per action dimension
    L_Q    = L_TD + α · L_PA
and every `policy_delay` updates (1 online) the actor step and the targets:
    L_π    = β · mean (π(s) − a)² − E[Q̂(s, π(s))] / E|Q̂(s, π(s))|      (TD3+BC's mse, unit actions)
with Q̂ the ensemble minimum offline and the mean of a random subset of critics online.
Infeasible actions are drawn in [-1, 1] action units and mapped to environment units like any
action (on MuJoCo's [-1, 1] boxes the two coincide).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from algorithms.common.learner import Updates
from algorithms.common.targets import SoftUpdater
from algorithms.common.td3_core import TD3Hparams, smoothed_target_action, td_loss


def random_subset(n: int, k: int, device: torch.device) -> torch.Tensor:
    """k distinct indices of an ensemble of n, drawn afresh (k ≥ n: all of them)."""
    return torch.arange(n, device=device) if k >= n else torch.randperm(n, device=device)[:k]


def infeasible_actions(shape: tuple[int, ...], L: float, device: torch.device) -> torch.Tensor:
    """a_I ~ U([−2L, −L] ∪ [L, 2L]) per dimension (unit action space): a magnitude U(L, 2L), a random sign."""
    magnitude = L + L * torch.rand(shape, device=device)
    sign = torch.where(torch.rand(shape, device=device) < 0.5, -1.0, 1.0)
    return sign * magnitude


@torch.no_grad()
def subset_min_target(critics_target: nn.Module, next_obs: torch.Tensor, next_a: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor,
                      gamma: float, reward_scale: float, subset: torch.Tensor) -> torch.Tensor:
    """y = c·r + γ (1 − d) min_{i∈S} Q̄_i(s′, a′)."""
    q_next = critics_target(next_obs, next_a)[subset].min(dim=0).values
    return reward_scale * rewards + gamma * (1.0 - terminals) * q_next


def pa_loss(q_infeasible: torch.Tensor, q_min: float) -> torch.Tensor:
    """L_PA = Σ_i E[(Q_i(s, a_I) − Q_min)²] for an ensemble's [n, B] values."""
    return ((q_infeasible - q_min) ** 2).mean(dim=1).sum()


def pars_actor_loss(q_pi: torch.Tensor, pi: torch.Tensor, actions: torch.Tensor, beta: float) -> torch.Tensor:
    """β·E‖π(s) − a‖² − E[Q̂]/E|Q̂| for Q̂ ([B]) already reduced over the ensemble."""
    bc = ((pi - actions) ** 2).mean() if beta else torch.zeros((), device=pi.device)  # TD3+BC's mse_loss
    return beta * bc - q_pi.mean() / q_pi.abs().mean().detach()


class PARSUpdates(Updates):
    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module, float]]:
        return {"actor": (module.actor, config.actor_lr), "critic": (module.critics, config.critic_lr)}

    def setup(self) -> None:
        c, m = self.config, self.m
        self.online = c.paradigm != "offline"
        self.hp = TD3Hparams(gamma=c.gamma, tau=c.tau, policy_noise=c.policy_noise, noise_clip=c.noise_clip)
        self.pa_alpha = c.pa_alpha_online if self.online else c.pa_alpha
        self.beta = c.beta_online if self.online else c.beta
        self.target_subset = c.target_subset_online if self.online else c.target_subset
        self.policy_delay = c.policy_delay_online if self.online else c.policy_delay
        self.soft_update = SoftUpdater([(m.actor_target, m.actor), (m.critics_target, m.critics)], c.tau)
        self.td_updates = 0

    def critic_loss(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c, m = self.config, self.m
        n = len(m.critics)
        next_a = smoothed_target_action(m, b["next_obs"], self.hp)
        subset = random_subset(n, self.target_subset, b["obs"].device)
        y = subset_min_target(m.critics_target, b["next_obs"], next_a, b["rewards"], b["terminals"], c.gamma, c.reward_scale, subset)
        q = m.critics(b["obs"], b["actions"])
        loss_td = td_loss(q, y)
        a_inf = m.actor.to_env(infeasible_actions(b["actions"].shape, c.infeasible_L, b["obs"].device))
        q_inf = m.critics(b["obs"], a_inf)
        loss_pa = pa_loss(q_inf, c.q_min)
        return loss_td + self.pa_alpha * loss_pa, {"td_loss": loss_td.detach(), "pa_loss": loss_pa.detach(),
                                                  "q_data": q.mean().detach(), "q_infeasible": q_inf.mean().detach(), "q_target": y.mean()}

    def actor_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        m = self.m
        pi = m.actor(b["obs"])
        q_all = m.critics(b["obs"], pi)
        if self.online:  # mean over a random subset of critics
            q_hat = q_all[random_subset(len(m.critics), self.config.actor_subset_online, pi.device)].mean(dim=0)
        else:  # the ensemble minimum
            q_hat = q_all.min(dim=0).values
        return pars_actor_loss(q_hat, m.actor.to_unit(pi), m.actor.to_unit(b["actions"]), self.beta)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m = self.m
        b = self.normalised(batch)
        loss_q, out = self.critic_loss(b)
        self.step("critic", loss_q)
        out["critic_loss"] = loss_q.detach()
        self.td_updates += 1
        if self.td_updates % self.policy_delay == 0:
            m.critics.requires_grad_(False)
            loss_pi = self.actor_loss(b)
            self.step("actor", loss_pi)
            m.critics.requires_grad_(True)
            self.soft_update()
            out["actor_loss"] = loss_pi.detach()
        return out
