"""IQL+OPT's RL module: IQL's networks (actor, Q_off-pt = `critics` with its target, V_off-pt =
`value`, the reward scale) plus the online-pretrained pair Q_on-pt (`critics_on`, role `q_on`,
with a target copy) and V_on-pt (`value_on`, role `v_on`), both new and randomly initialised at
the warm start, and balanced replay's density ratio w(s, a)."""

from __future__ import annotations

from typing import Any

from algorithms.common.module import Role
from algorithms.common.networks import CriticEnsemble, ValueNetwork
from algorithms.common.online_pretraining import DensityRatio
from algorithms.iql.iql_module import IQLRLModule


class OPTIQLRLModule(IQLRLModule):
    ROLES = (*IQLRLModule.ROLES, Role("critics_on", "q_on"), Role("value_on", "v_on"))
    TARGETS = (*IQLRLModule.TARGETS, "critics_on")

    def build(self, cfg: dict[str, Any]) -> None:
        super().build(cfg)
        self.critics_on = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=2)
        self.value_on = ValueNetwork(self.obs_dim, cfg["hidden"])
        self.density_ratio = DensityRatio(self.obs_dim, self.act_dim, cfg["hidden"])
