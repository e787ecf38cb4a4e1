"""OPT's RL module: TD3's networks plus the online-pretrained critic Q_on-pt.

`critics` is Q_off-pt (it arrives from the offline phase under the same name), `critics_on`
is Q_on-pt (new, randomly initialised), `density_ratio` is balanced replay's w(s, a).
"""

from __future__ import annotations

from typing import Any

from algorithms.common.module import Role
from algorithms.common.networks import CriticEnsemble
from algorithms.common.online_pretraining import DensityRatio
from algorithms.td3.td3_module import TD3RLModule

__all__ = ["DensityRatio", "OPTRLModule"]


class OPTRLModule(TD3RLModule):
    ROLES = (*TD3RLModule.ROLES, Role("critics_on", "q_on"))
    TARGETS = (*TD3RLModule.TARGETS, "critics_on")

    def build(self, cfg: dict[str, Any]) -> None:
        super().build(cfg)
        self.critics_on = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=2)
        self.density_ratio = DensityRatio(self.obs_dim, self.act_dim, cfg["hidden"])
