"""RLPD's RL module: SAC's tanh-Gaussian actor and log α, with an ensemble of `num_qs` critics
that have LayerNorm after every hidden layer (P `critic_layer_norm=True`). Same roles as SAC
(`actor`, `critics` → q), so RLPD ↔ SAC/CQL/TD3 transfers go through the checker by role."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from algorithms.common.module import Role, build_actor
from algorithms.common.networks import CriticEnsemble
from algorithms.sac.sac_module import SACRLModule


class RLPDRLModule(SACRLModule):
    ROLES = (Role("actor", "actor"), Role("critics", "q"))
    TARGETS = ("critics",)
    DEFAULT_MODEL_CONFIG = {"hidden": [256, 256], "initial_alpha": 1.0, "num_qs": 10, "critic_layer_norm": True}

    def build(self, cfg: dict[str, Any]) -> None:
        self.actor = build_actor(self, cfg, "gaussian", squash="tanh_sample", state_dependent_std=True)
        self.critics = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=int(cfg["num_qs"]), layer_norm=bool(cfg["critic_layer_norm"]))
        self.log_alpha = nn.Parameter(torch.tensor(math.log(float(cfg["initial_alpha"]))))
