"""AWAC's RL module (CORL's): a Gaussian actor with an unbounded mean and a state-independent
log σ ∈ [−20, 2] whose samples are clamped to the action bounds, and twin critics (no V)."""

from __future__ import annotations

from typing import Any

from algorithms.common.module import MPRLModule, Role, build_actor
from algorithms.common.networks import CriticEnsemble


class AWACRLModule(MPRLModule):
    ROLES = (Role("actor", "actor"), Role("critics", "q"))
    TARGETS = ("critics",)
    DEFAULT_MODEL_CONFIG = {"hidden": [256, 256, 256]}

    def build(self, cfg: dict[str, Any]) -> None:
        self.actor = build_actor(self, cfg, "gaussian", squash="none", state_dependent_std=False, log_std_min=-20.0, log_std_max=2.0)
        self.critics = CriticEnsemble(self.obs_dim, self.act_dim, cfg["hidden"], n=2)
