"""TD3+BC (Fujimoto & Gu 2021): offline TD3 with a normalised behaviour-cloning term.

π = argmax_π E_(s,a)~D [ λ Q(s, π(s)) − (π(s) − a)² ],  λ = α / mean|Q(s, π(s))|,  α = 2.5;
states are normalised with the dataset's mean and standard deviation. Fine-tuning (online
and hybrid phases) keeps the BC term as it is, or decays its weight with `bc_cool`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm
from algorithms.common.schedules import decayed
from algorithms.common.settings import ONLINE, OffPolicySettings
from algorithms.common.td3_core import TD3Hparams
from algorithms.td3.td3 import TD3Config, TD3Settings
from algorithms.td3.td3_learner import TD3Updates


class TD3BCSettings(TD3Settings):
    alpha: float = Field(2.5, gt=0.0, description="α of λ = α / mean|Q(s, π(s))|, the weight of the Q term against BC")
    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3)")
    updates_per_iteration: int = Field(5000, ge=1, description="gradient updates per training iteration (set by evaluation.interval)")
    bc_cool: bool = Field(False, description="decay the BC term online: weight_t = max(bc_end, 1 − t/T) (off: kept at 1, the offline loss)", json_schema_extra=ONLINE)
    bc_end: float = Field(0.0, ge=0.0, le=1.0, description="the floor of the BC weight's decay (0: plain normalised TD3 after T)", json_schema_extra=ONLINE)
    bc_cool_steps: int | None = Field(None, ge=1, description="T of the decay in env steps (None: the phase's env-step budget)", json_schema_extra=ONLINE)


class TD3BCUpdates(TD3Updates):
    """TD3+BC; online and hybrid phases may keep the BC term with a decay (`bc_cool`, as SPOT's λ)."""

    def hparams(self) -> TD3Hparams:
        hp = super().hparams()
        hp.alpha = self.config.alpha
        return hp

    def bc_weight(self) -> float:
        c = self.config
        if getattr(c, "paradigm", "offline") == "offline" or not c.bc_cool:
            return 1.0
        return decayed(1.0, self.env_steps, c.bc_cool_steps or getattr(c, "budget_env_steps", None) or 1_000_000, c.bc_end)

    def run(self, num_updates: int, step: str = "update", **params: Any) -> dict[str, float]:
        self.updater.hp.bc_weight = self.bc_weight()
        out = super().run(num_updates, step, **params)
        if out and getattr(self.config, "paradigm", "offline") != "offline":
            out["bc_weight"] = self.updater.hp.bc_weight
        return out


class TD3BCConfig(TD3Config):
    settings: ClassVar[type[OffPolicySettings]] = TD3BCSettings
    updates_class_path = "algorithms.td3_bc.td3_bc:TD3BCUpdates"
    default_paradigm = "offline"

    @classmethod
    def default_algo_class(cls) -> type:
        return TD3BC


class TD3BC(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> TD3BCConfig:
        return TD3BCConfig()
