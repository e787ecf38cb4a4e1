"""Networks every algorithm builds from: MLPs, actors (deterministic, Gaussian), critic ensembles,
state-value functions and the observation normaliser.

Each network keeps its layers in one `nn.Sequential` (`.net`, or `.qs[i]` for ensemble members)
of Linear [→ LayerNorm] → activation blocks, so the transfer code can read any of them as a
chain of layers whatever algorithm built it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int], activation: type[nn.Module] = nn.ReLU, layer_norm: bool = False) -> nn.Sequential:
    """Linear → [LayerNorm →] activation per hidden layer, then a Linear output (RLPD's critic order)."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers.append(nn.Linear(in_dim, h))
        if layer_norm:
            layers.append(nn.LayerNorm(h))
        layers.append(activation())
        in_dim = h
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class ObsNormalizer(nn.Module):
    """(s − μ) / σ with μ, σ stored as buffers, so they travel with checkpoints and transfers."""

    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))

    def set_stats(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.mean) / self.std


class _BoundedActor(nn.Module):
    """Holds the action bounds as buffers: actions leave the actor in environment units."""

    #: how the deterministic action is made from the output y (mprl.transfer.roles.ACTION_TRANSFORMS)
    action_transform = "tanh_bounds"

    def _set_bounds(self, low: np.ndarray, high: np.ndarray) -> int:
        low_t = torch.as_tensor(low, dtype=torch.float32)
        high_t = torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("action_scale", (high_t - low_t) / 2)
        self.register_buffer("action_bias", (high_t + low_t) / 2)
        return low_t.numel()

    def to_env(self, a_unit: torch.Tensor) -> torch.Tensor:
        """[-1, 1] → environment units."""
        return self.action_bias + self.action_scale * a_unit

    def to_unit(self, a_env: torch.Tensor) -> torch.Tensor:
        """Environment units → [-1, 1]."""
        return (a_env - self.action_bias) / self.action_scale

    def clip(self, a_env: torch.Tensor) -> torch.Tensor:
        return torch.max(torch.min(a_env, self.action_bias + self.action_scale), self.action_bias - self.action_scale)


class DeterministicActor(_BoundedActor):
    """π(s) = bias + scale · tanh(MLP(s)): actions in environment units, as in TD3's max_action."""

    kind = "deterministic"

    def __init__(self, obs_dim: int, low: np.ndarray, high: np.ndarray, hidden: Sequence[int]) -> None:
        super().__init__()
        act_dim = self._set_bounds(low, high)
        self.net = mlp(obs_dim, act_dim, hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.to_env(torch.tanh(self.net(obs)))


#: Gaussian parameterisations of the catalogue (u ~ N(μ, σ²) in [-1, 1] action units):
#:   tanh_sample: a = tanh(u)                    (SAC, CQL, Cal-QL, RLPD: squashed Gaussian)
#:   tanh_mean:   u ~ N(tanh(μ), σ²), a = clip(u) (CORL's IQL GaussianPolicy)
#:   none:        u ~ N(μ, σ²), a = clip(u)        (AWAC: unbounded mean, clamped samples)
SQUASHES = ("tanh_sample", "tanh_mean", "none")


class GaussianActor(_BoundedActor):
    """A Gaussian policy over [-1, 1] action units, mapped to the bounds on the way out.

    `forward(s)` is the deterministic action (the distribution's mode through the squash), in
    environment units, so every actor can be called the same way for evaluation and serving.
    With `state_dependent_std` the output layer has 2·|A| rows (means, then log-stds, as
    RLlib's SAC head); otherwise log σ is one learnt parameter per action dimension.
    """

    kind = "gaussian"

    def __init__(
        self, obs_dim: int, low: np.ndarray, high: np.ndarray, hidden: Sequence[int], *,
        squash: str = "tanh_sample", state_dependent_std: bool = True,
        log_std_min: float = -20.0, log_std_max: float = 2.0, log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        if squash not in SQUASHES:
            raise ValueError(f"squash must be one of {SQUASHES}, got {squash!r}")
        act_dim = self._set_bounds(low, high)
        self.act_dim, self.squash = act_dim, squash
        self.state_dependent_std = state_dependent_std
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.net = mlp(obs_dim, 2 * act_dim if state_dependent_std else act_dim, hidden)
        if not state_dependent_std:
            self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        self.action_transform = "clip_bounds" if squash == "none" else "tanh_bounds"

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ) of the Gaussian, log σ clamped to its bounds."""
        out = self.net(obs)
        if self.state_dependent_std:
            mu, log_std = out[..., : self.act_dim], out[..., self.act_dim :]
        else:
            mu, log_std = out, self.log_std.expand_as(out)
        if self.squash == "tanh_mean":
            mu = torch.tanh(mu)
        return mu, log_std.clamp(self.log_std_min, self.log_std_max)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mu = self.dist_params(obs)[0]
        return self.to_env(torch.tanh(mu) if self.squash == "tanh_sample" else mu.clamp(-1.0, 1.0))

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample in environment units and its log π(a|s) (in [-1, 1] units)."""
        mu, log_std = self.dist_params(obs)
        dist = Normal(mu, log_std.exp())
        u = dist.rsample()
        if self.squash == "tanh_sample":
            a = torch.tanh(u)
            # log π(a) = log N(u) − Σ log(1 − tanh²u), in the numerically stable form.
            logp = dist.log_prob(u).sum(-1) - (2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))).sum(-1)
        else:
            a = u.clamp(-1.0, 1.0)
            logp = dist.log_prob(u).sum(-1)
        return self.to_env(a), logp

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π(a|s) of given actions (environment units), e.g. dataset actions for BC, AWAC, IQL."""
        mu, log_std = self.dist_params(obs)
        dist = Normal(mu, log_std.exp())
        a = self.to_unit(actions)
        if self.squash != "tanh_sample":
            return dist.log_prob(a).sum(-1)
        a = a.clamp(-1.0 + 1e-6, 1.0 - 1e-6)
        u = torch.atanh(a)
        return dist.log_prob(u).sum(-1) - torch.log1p(-a.pow(2) + 1e-6).sum(-1)


class CriticEnsemble(nn.Module):
    """n independent Q(s, a) networks on concat(s, a); forward returns a [n, B] tensor."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], n: int = 2, layer_norm: bool = False) -> None:
        super().__init__()
        self.layer_norm = layer_norm
        self.qs = nn.ModuleList(mlp(obs_dim + act_dim, 1, hidden, layer_norm=layer_norm) for _ in range(n))

    def __len__(self) -> int:
        return len(self.qs)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, act], dim=-1)
        return torch.stack([q(x).squeeze(-1) for q in self.qs])

    def q1(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.qs[0](torch.cat([obs, act], dim=-1)).squeeze(-1)


class ValueNetwork(nn.Module):
    """V(s), e.g. IQL's expectile value function."""

    def __init__(self, obs_dim: int, hidden: Sequence[int], layer_norm: bool = False) -> None:
        super().__init__()
        self.net = mlp(obs_dim, 1, hidden, layer_norm=layer_norm)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)
