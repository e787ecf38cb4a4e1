"""Off2On's updates (Lee et al. 2022; O `rlkit/rlkit/torch/sac/ours.py::compute_loss`).

K members, member k with twin critics Q1_k, Q2_k and targets Q̄1_k, Q̄2_k; π the ensemble
policy (the members' Gaussians combined, off2on_module.EnsembleGaussianActor); a′ ~ π(·|s′),
ã ~ π(·|s) reparameterised; (s, a, r, s′, d) a balanced-replay minibatch:

    critic   y_k = r + γ (1 − d) [ min(Q̄1_k, Q̄2_k)(s′, a′) − α log π(a′|s′) ]
             L_Q = Σ_k E[(Q1_k(s, a) − y_k)² + (Q2_k(s, a) − y_k)²]        (O: .sum(0).mean() per Q)
    actor    L_π = E[ α log π(ã|s) − mean_k min(Q1_k, Q2_k)(s, ã) ]         (pessimistic ensemble mean)
    α        SAC's: J(α) = E[−log α (log π(ã|s) + H̄)]
    w        L_ψ = E_off[−log(2 / (w + 1))] − E_on[log(2w / (w + 1))]     (JS; B_off, B_on uniform batches)
    priority p_i = clamp( w(s_i, a_i)^(1/T) / mean_off(w^(1/T)), 1e-3, 1e3 )  for the replayed rows

The update is SAC's (`SACUpdates`) with the ensemble's critic loss and the pessimistic actor
reduction; the density ratio is the network and loss OPT uses too (algorithms.common.online_pretraining).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from algorithms.common.online_pretraining import density_ratio_loss
from algorithms.sac.sac_learner import SACUpdates

PRIORITY_MIN, PRIORITY_MAX = 1e-3, 1e3  # O: normalized_weight.clamp(0.001, 1000)


def pessimistic_mean(q: torch.Tensor) -> torch.Tensor:
    """mean_k min(Q1_k, Q2_k) of [2K, B] values ordered (Q1_0, Q2_0, Q1_1, Q2_1, ...)."""
    return q.view(-1, 2, *q.shape[1:]).min(dim=1).values.mean(dim=0)


def member_min(q: torch.Tensor) -> torch.Tensor:
    """[K, B]: min(Q̄1_k, Q̄2_k) of each member, from [2K, B] values."""
    return q.view(-1, 2, *q.shape[1:]).min(dim=1).values


def ensemble_targets(actor: nn.Module, critics_target: nn.Module, next_obs_n: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor,
                     gamma: float, alpha: torch.Tensor | float, backup_entropy: bool = True) -> torch.Tensor:
    """[K, B] targets y_k = r + γ (1 − d) [min(Q̄1_k, Q̄2_k)(s′, a′) − α log π(a′|s′)], one a′ ~ π(s′) for all members (O)."""
    with torch.no_grad():
        next_a, next_log_pi = actor.sample(next_obs_n)
        q_next = member_min(critics_target(next_obs_n, next_a))
        if backup_entropy:
            q_next = q_next - alpha * next_log_pi
        return rewards + gamma * (1.0 - terminals) * q_next


def ensemble_critic_loss(q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Σ_k E[(Q1_k − y_k)² + (Q2_k − y_k)²] for [2K, B] values and [K, B] targets."""
    return (q.view(*y.shape[:1], 2, -1) - y.unsqueeze(1)).pow(2).sum(dim=(0, 1)).mean()


def balanced_priorities(w: torch.Tensor, w_off: torch.Tensor, temperature: float) -> torch.Tensor:
    """clamp(w^(1/T) / mean_off(w^(1/T)), 1e-3, 1e3): the replayed rows' new priorities (O)."""
    return (w.pow(1.0 / temperature) / (w_off.pow(1.0 / temperature).mean() + 1e-10)).clamp(PRIORITY_MIN, PRIORITY_MAX)


class Off2OnUpdates(SACUpdates):
    """SAC's update order (critics, actor, temperature, targets) with the ensemble's critic loss and
    pessimistic actor, and the density ratio and priorities stepped before the targets move."""

    bellman_target = staticmethod(ensemble_targets)  # y_k per member
    critic_td = staticmethod(ensemble_critic_loss)   # summed over members
    actor_reduce = staticmethod(pessimistic_mean)

    @staticmethod
    def optimizer_groups(module: nn.Module, config: Any) -> dict[str, tuple[nn.Module | list[nn.Parameter], float]]:
        return {**SACUpdates.optimizer_groups(module, config), "density_ratio": (module.density_ratio, config.density_ratio_lr)}

    def after_temperature(self, b: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # balanced replay only: the sampler hands the replayed rows' indices
        return self.update_density_ratio(b, batch["idx"]) if "idx" in batch else {}

    def update_density_ratio(self, batch_n: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step of w on uniform B_off / B_on minibatches; the replayed rows get w's priorities
        from before the step, normalised by the offline batch's mean (O)."""
        m, s, bs = self.m, self.sampler, self.config.train_batch_size_per_learner
        b_off, b_on = s.offline.sample(bs), s.online.sample(bs)
        w = m.density_ratio(m.normalizer(torch.cat([b_off["obs"], b_on["obs"]])), torch.cat([b_off["actions"], b_on["actions"]]))
        w_off, w_on = w[:bs], w[bs:]
        loss = density_ratio_loss(w_off, w_on)
        with torch.no_grad():
            w_replayed = m.density_ratio(batch_n["obs"], batch_n["actions"])
            priorities = balanced_priorities(w_replayed, w_off.detach(), self.config.balanced_temperature)
        self.step("density_ratio", loss)
        s.balanced.set_priorities(idx, priorities)
        return {"density_ratio_loss": loss.detach(), "w_offline": w_off.detach().mean(), "w_online": w_on.detach().mean(),
                "priority_mean": priorities.mean()}
