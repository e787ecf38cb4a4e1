"""OPT's RL module: TD3's networks plus the online-pretrained critic Q_on-pt.

`critics` is Q_off-pt (it arrives from the offline phase under the same name), `critics_on`
is Q_on-pt (new, randomly initialised), `density_ratio` is balanced replay's w(s, a).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from algorithms.common.module import Role
from algorithms.common.networks import CriticEnsemble, mlp
from algorithms.td3.td3_module import TD3RLModule


class OPTRLModule(TD3RLModule):
    ROLES = (*TD3RLModule.ROLES, Role("critics_on", "q_on"))
    TARGETS = (*TD3RLModule.TARGETS, "critics_on")

    def build(self, cfg: dict[str, Any]) -> None:
        super().build(cfg)
        self.critics_on = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=2)
        self.density_ratio = DensityRatio(self.obs_dim, self.act_dim, cfg["hidden"])


class DensityRatio(nn.Module):
    """w(s, a) ≥ 0, trained so that w ≈ d_on(s, a) / d_off(s, a) (Lee et al. 2022)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = mlp(obs_dim + act_dim, 1, hidden)

    def forward(self, obs_n: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.net(torch.cat([obs_n, act], dim=-1))).squeeze(-1)
