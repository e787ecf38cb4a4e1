"""BC's RL module: an actor and the observation normaliser, nothing else (no critic, no targets)."""

from __future__ import annotations

from typing import Any, ClassVar

from algorithms.common.module import MPRLModule, Role, build_actor


class BCRLModule(MPRLModule):
    """`head: deterministic` is CORL's any_percent_bc actor (2×256 ReLU, tanh to the bounds);
    `head: gaussian` is a tanh-mean Gaussian with a state-independent log σ (CORL IQL's
    parameterisation), so its deterministic action is the same function of the same layers and
    it transfers exactly into TD3-family and IQL actors."""

    ROLES = (Role("actor", "actor"),)
    DEFAULT_MODEL_CONFIG: ClassVar[dict[str, Any]] = {"hidden": [256, 256], "head": "deterministic"}

    def build(self, cfg: dict[str, Any]) -> None:
        self.actor = build_actor(self, cfg, cfg["head"], squash="tanh_mean", state_dependent_std=False)
