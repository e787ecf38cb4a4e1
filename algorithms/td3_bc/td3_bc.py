"""TD3+BC (Fujimoto & Gu 2021): offline TD3 with a normalised behaviour-cloning term.

π = argmax_π E_(s,a)~D [ λ Q(s, π(s)) − (π(s) − a)² ],  λ = α / mean|Q(s, π(s))|,  α = 2.5;
states are normalised with the dataset's mean and standard deviation.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm
from algorithms.common.settings import OffPolicySettings
from algorithms.common.td3_core import TD3Hparams
from algorithms.td3.td3 import TD3Config, TD3Settings
from algorithms.td3.td3_learner import TD3Updates


class TD3BCSettings(TD3Settings):
    alpha: float = Field(2.5, gt=0.0, description="α of λ = α / mean|Q(s, π(s))|, the weight of the Q term against BC")
    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3)")
    updates_per_iteration: int = Field(5000, ge=1, description="gradient updates per training iteration (set by evaluation.interval)")


class TD3BCUpdates(TD3Updates):
    def hparams(self) -> TD3Hparams:
        hp = super().hparams()
        hp.alpha = self.config.alpha
        return hp


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
