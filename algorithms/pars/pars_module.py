"""PARS's RL module: TD3's deterministic actor and an ensemble of `num_critics` critics with
LayerNorm after every hidden layer (the "LN" of RS-LN), with target copies of both."""

from __future__ import annotations

from typing import Any

from algorithms.common.module import MPRLModule, Role, build_actor
from algorithms.common.networks import CriticEnsemble


class PARSRLModule(MPRLModule):
    ROLES = (Role("actor", "actor"), Role("critics", "q"))
    TARGETS = ("actor", "critics")
    DEFAULT_MODEL_CONFIG = {"hidden": [256, 256], "exploration_noise": 0.1, "num_critics": 10}

    def build(self, cfg: dict[str, Any]) -> None:
        self.actor = build_actor(self, cfg, "deterministic")
        self.critics = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=int(cfg["num_critics"]), layer_norm=True)
