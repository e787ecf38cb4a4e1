"""Off2On's RL module: an ensemble of K SAC agents (Lee et al. 2022, O `rlkit/examples/ours.py`).

Member k is a tanh-Gaussian actor `actor.members[k]` and twin critics `critics.qs[2k], qs[2k+1]`
(with their targets); the K members come from K offline CQL checkpoints (`member(k)` is the
SAC-shaped view that the ensemble warm start loads checkpoint k into). The policy that acts
and is trained is the members' Gaussians combined into one (`EnsembleGaussianActor`); the
temperature log α is shared; `density_ratio` is balanced replay's w(s, a).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from algorithms.common.module import Role, build_actor
from algorithms.common.networks import CriticEnsemble, GaussianActor
from algorithms.common.online_pretraining import DensityRatio
from algorithms.sac.sac_module import SACRLModule


class EnsembleGaussianActor(GaussianActor):
    """The K members' pre-tanh Gaussians N(μ_k, σ_k²) combined into one Gaussian with the
    mixture's mean and variance, squashed by tanh (O `examples/ours.py::ParallelTanhGaussianPolicy`):

        μ = mean_k μ_k,   σ² = mean_k (σ_k² + μ_k²) − μ²

    `sample`, `forward` (tanh μ) and `log_prob` are GaussianActor's on these parameters."""

    def __init__(self, members: list[GaussianActor]) -> None:
        nn.Module.__init__(self)
        first = members[0]
        self.register_buffer("action_scale", first.action_scale.clone())
        self.register_buffer("action_bias", first.action_bias.clone())
        self.act_dim, self.squash, self.state_dependent_std = first.act_dim, "tanh_sample", True
        self.log_std_min, self.log_std_max = first.log_std_min, first.log_std_max
        self.action_transform = "tanh_bounds"
        self.members = nn.ModuleList(members)

    def member_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[K, B, |A|] means and log-stds of the members."""
        params = [m.dist_params(obs) for m in self.members]
        return torch.stack([p[0] for p in params]), torch.stack([p[1] for p in params])

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixture's (μ, log σ), σ clamped to [e^−20, e^2] as O's ParallelTanhGaussianPolicy."""
        mu, log_std = mixture_moments(*self.member_params(obs))
        return mu, log_std.clamp(self.log_std_min, self.log_std_max)


def mixture_moments(mus: torch.Tensor, log_stds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, log σ) of the equal-weight mixture of N(μ_k, σ_k²) over the first dimension."""
    mu = mus.mean(0)
    var = ((2 * log_stds).exp() + mus.pow(2)).mean(0) - mu.pow(2)
    return mu, 0.5 * var.clamp(min=1e-30).log()


class _Critics(nn.Module):
    """Member k's twin critics: a view of two networks of the ensemble (shared parameters)."""

    def __init__(self, qs: list[nn.Module]) -> None:
        super().__init__()
        self.qs = nn.ModuleList(qs)


class Off2OnMember(nn.Module):
    """Member k as a SAC-shaped module (actor, critics → q, critics_target, normaliser), sharing
    the ensemble's parameters: the transfer checker loads a SAC/CQL checkpoint into it by role."""

    ROLES = SACRLModule.ROLES

    def __init__(self, module: Off2OnRLModule, k: int) -> None:
        super().__init__()
        self.observation_space, self.action_space = module.observation_space, module.action_space
        self.normalizer = module.normalizer
        self.actor = module.actor.members[k]
        self.critics = _Critics(list(module.critics.qs[2 * k: 2 * k + 2]))
        self.critics_target = _Critics(list(module.critics_target.qs[2 * k: 2 * k + 2]))

    def declared_roles(self) -> list[Role]:
        return [Role("actor", "actor"), Role("critics", "q"), Role("critics_target", "q_target")]


class Off2OnRLModule(SACRLModule):
    """`actor` (the combined policy, members in `actor.members`), `critics` (2K Q networks, member
    k's twins at 2k, 2k+1), their targets, log α and the density-ratio network."""

    ROLES = (Role("actor", "actor"), Role("critics", "q"))
    TARGETS = ("critics",)
    DEFAULT_MODEL_CONFIG = {"hidden": [256, 256], "initial_alpha": 1.0, "ensemble_size": 5}
    #: the phase's `init_from: {..., as: ensemble}` loads one checkpoint per member (`member(k)`)
    ENSEMBLE = True

    def build(self, cfg: dict[str, Any]) -> None:
        k = int(cfg["ensemble_size"])
        self.ensemble_size = k
        self.actor = EnsembleGaussianActor([build_actor(self, cfg, "gaussian", squash="tanh_sample", state_dependent_std=True) for _ in range(k)])
        self.critics = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=2 * k)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(float(cfg["initial_alpha"]))))
        self.density_ratio = DensityRatio(self.obs_dim, self.act_dim, cfg["hidden"])
        with torch.no_grad():  # O: weight_net.last_fc.bias.data.fill_(1.0), so w starts near 1 (softplus(1) ≈ 1.31)
            self.density_ratio.net[-1].bias.fill_(1.0)

    def member(self, k: int) -> Off2OnMember:
        return Off2OnMember(self, k)
