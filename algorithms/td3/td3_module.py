"""TD3's RL module: deterministic actor, twin critics, their targets and the observation normaliser.

Used unchanged by TD3, TD3+BC and OPT (which adds Q_on-pt), so their checkpoints are interchangeable.
"""

from __future__ import annotations

from typing import Any

from algorithms.common.module import MPRLModule, Role, build_actor
from algorithms.common.networks import CriticEnsemble


class TD3RLModule(MPRLModule):
    ROLES = (Role("actor", "actor"), Role("critics", "q"))
    TARGETS = ("actor", "critics")

    def build(self, cfg: dict[str, Any]) -> None:
        self.actor = build_actor(self, cfg, "deterministic")
        self.critics = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=2)
