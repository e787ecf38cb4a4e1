"""TD3 and TD3+BC math, shared by the RLlib learners and the plain PyTorch reference loop.

Notation follows the papers: clipped double-Q target
    y = r + γ (1 − d) min_{i=1,2} Q'_i(s', clip(π'(s') + clip(ε, −c, c), a_low, a_high)),  ε ~ N(0, σ²)
critic loss Σ_i (Q_i(s, a) − y)², TD3 actor loss −Q_1(s, π(s)) every `policy_delay` updates,
and TD3+BC's actor loss −λ Q_1(s, π(s)) + (π(s) − a)² with λ = α / mean|Q_1(s, π(s))|.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from algorithms.common.networks import CriticEnsemble, DeterministicActor, ObsNormalizer
from algorithms.common.targets import SoftUpdater


@dataclass
class TD3Hparams:
    """Defaults are the TD3 paper's (Fujimoto et al. 2018); `alpha` set turns on TD3+BC (α = 2.5)."""

    gamma: float = 0.99
    tau: float = 0.005
    policy_noise: float = 0.2  # σ of target policy smoothing, as a fraction of the half action range
    noise_clip: float = 0.5  # c, same units
    policy_delay: int = 2
    alpha: float | None = None
    bc_weight: float = 1.0  # TD3+BC: weight of the BC term (decayed online by `bc_cool`)


def build_td3_networks(owner: nn.Module, obs_dim: int, low: np.ndarray, high: np.ndarray, hidden: Sequence[int]) -> None:
    """Attach normaliser, actor, twin critics and their targets to `owner` under fixed names.

    The names (normalizer, actor, critics, actor_target, critics_target) are the roles the
    transfer code and the lineage refer to.
    """
    act_dim = int(np.prod(np.shape(low)))
    owner.normalizer = ObsNormalizer(obs_dim)
    owner.actor = DeterministicActor(obs_dim, low, high, hidden)
    owner.critics = CriticEnsemble(obs_dim, act_dim, hidden, n=2)
    owner.actor_target = copy.deepcopy(owner.actor).requires_grad_(False)
    owner.critics_target = copy.deepcopy(owner.critics).requires_grad_(False)


def policy_action(nets: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """Deterministic action a = π(normalise(s)) in environment units."""
    return nets.actor(nets.normalizer(obs))


def smoothed_target_action(nets: nn.Module, next_obs_n: torch.Tensor, hp: TD3Hparams) -> torch.Tensor:
    """clip(π'(s') + clip(ε, −c, c), a_low, a_high), ε ~ N(0, σ²), in environment units."""
    with torch.no_grad():
        scale = nets.actor_target.action_scale
        next_a = nets.actor_target(next_obs_n)
        eps = (torch.randn_like(next_a) * hp.policy_noise).clamp(-hp.noise_clip, hp.noise_clip) * scale
        low = nets.actor_target.action_bias - scale
        high = nets.actor_target.action_bias + scale
        return torch.max(torch.min(next_a + eps, high), low)


def td3_target(
    nets: nn.Module,
    next_obs_n: torch.Tensor,
    rewards: torch.Tensor,
    terminals: torch.Tensor,
    hp: TD3Hparams,
    critics_target: nn.Module | None = None,
    next_a: torch.Tensor | None = None,
) -> torch.Tensor:
    """y = r + γ (1 − d) min_i Q'_i(s', π'(s') + clipped noise); inputs already normalised.

    `critics_target` defaults to `nets.critics_target`; OPT passes Q_on-pt's target and
    shares one smoothed `next_a` between its two critics.
    """
    critics_target = nets.critics_target if critics_target is None else critics_target
    with torch.no_grad():
        if next_a is None:
            next_a = smoothed_target_action(nets, next_obs_n, hp)
        q_next = critics_target(next_obs_n, next_a).min(dim=0).values
        return rewards + hp.gamma * (1.0 - terminals) * q_next


def td_loss(q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Σ_i MSE(Q_i, y) for an ensemble's [n, B] values, as in the reference implementation."""
    return ((q - y.unsqueeze(0)) ** 2).mean(dim=1).sum()


def critic_loss(nets: nn.Module, obs_n: torch.Tensor, actions: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return td_loss(nets.critics(obs_n, actions), y)


def td3_actor_loss(nets: nn.Module, obs_n: torch.Tensor) -> torch.Tensor:
    return -nets.critics.q1(obs_n, nets.actor(obs_n)).mean()


def td3_bc_actor_loss(nets: nn.Module, obs_n: torch.Tensor, actions: torch.Tensor, alpha: float, bc_weight: float = 1.0) -> torch.Tensor:
    pi = nets.actor(obs_n)
    q = nets.critics.q1(obs_n, pi)
    lmbda = alpha / q.abs().mean().detach()
    bc = F.mse_loss(pi, actions) if bc_weight else torch.zeros((), device=pi.device)
    return -lmbda * q.mean() + bc_weight * bc


class TD3Updater:
    """One TD3 / TD3+BC gradient update on a minibatch, with delayed actor and target updates.

    Targets and the delayed actor step are done per minibatch here (RLlib's own target hook
    runs once per `update()` call, which would be wrong with many updates per call).
    """

    def __init__(self, nets: nn.Module, actor_opt: torch.optim.Optimizer, critic_opt: torch.optim.Optimizer, hp: TD3Hparams,
                 step: Callable[[str, torch.Tensor], None] | None = None) -> None:
        self.nets = nets
        self.actor_opt = actor_opt
        self.critic_opt = critic_opt
        self.hp = hp
        #: `Updates.step` when run by an mprl learner (so the base sees the actor loss, e.g. for
        #: regularize_to_init); otherwise zero_grad → backward → step here
        self.step = step or self._step
        self.num_updates = 0
        self.soft_update = SoftUpdater([(nets.actor_target, nets.actor), (nets.critics_target, nets.critics)], hp.tau)

    def _step(self, name: str, loss: torch.Tensor) -> None:
        opt = self.actor_opt if name == "actor" else self.critic_opt
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def actor_loss(self, obs_n: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.hp.alpha is None:
            return td3_actor_loss(self.nets, obs_n)
        return td3_bc_actor_loss(self.nets, obs_n, actions, self.hp.alpha, self.hp.bc_weight)

    def update(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (critic loss, actor loss or None) as detached tensors; no host sync here."""
        nets = self.nets
        obs_n = nets.normalizer(batch["obs"])
        next_obs_n = nets.normalizer(batch["next_obs"])
        y = td3_target(nets, next_obs_n, batch["rewards"], batch["terminals"], self.hp)
        loss_q = critic_loss(nets, obs_n, batch["actions"], y)
        self.step("critic", loss_q)

        loss_pi = None
        self.num_updates += 1
        if self.num_updates % self.hp.policy_delay == 0:
            # Freeze the critics so the actor's backward pass does not compute their grads.
            nets.critics.requires_grad_(False)
            loss_pi = self.actor_loss(obs_n, batch["actions"])
            self.step("actor", loss_pi)
            nets.critics.requires_grad_(True)
            self.soft_update()
            loss_pi = loss_pi.detach()
        return loss_q.detach(), loss_pi
