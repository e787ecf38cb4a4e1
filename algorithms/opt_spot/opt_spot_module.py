"""SPOT+OPT's RL module: SPOT's networks (actor, Q_off-pt = `critics`, the VAE behaviour model,
their targets) plus the online-pretrained critic Q_on-pt (`critics_on`, role `q_on`, new and
randomly initialised at the warm start) and balanced replay's density ratio w(s, a)."""

from __future__ import annotations

from typing import Any

from algorithms.common.module import Role
from algorithms.common.networks import CriticEnsemble
from algorithms.common.online_pretraining import DensityRatio
from algorithms.spot.spot_module import SPOTRLModule, uniform_head_init_


class OPTSPOTRLModule(SPOTRLModule):
    ROLES = (*SPOTRLModule.ROLES, Role("critics_on", "q_on"))
    TARGETS = (*SPOTRLModule.TARGETS, "critics_on")

    def build(self, cfg: dict[str, Any]) -> None:
        super().build(cfg)
        self.critics_on = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=2)
        for q in self.critics_on.qs:
            uniform_head_init_(q, cfg["critic_init_w"])
        self.density_ratio = DensityRatio(self.obs_dim, self.act_dim, cfg["hidden"])
