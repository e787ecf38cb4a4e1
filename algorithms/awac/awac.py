"""AWAC (Nair et al. 2020) on mprl's off-policy base, with CORL's defaults (algorithms/finetune/awac.py).

    critic:  y = r + γ (1 − d) min_j Q̄_j(s′, a′),  a′ ~ π(·|s′)      (no entropy term)
    actor:   A = min_j Q_j(s, a) − min_j Q_j(s, ã),  ã ~ π(·|s)      (one-sample V(s))
             L_π = −E_(s,a)~D [ min(exp(A / λ), 100) · log π(a|s) ]  (weights without gradient)

One paradigm-agnostic update: offline on the dataset, online on the replay, and offline →
online on one shared buffer (the dataset, then online rows appended), as CORL fine-tunes.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import Hidden, OffPolicySettings


class AWACSettings(OffPolicySettings):
    """CORL's MuJoCo defaults: lr 3e-4, λ = 1/3, τ 0.005, 3×256 networks, states normalised."""

    default_hybrid_replay: ClassVar[str] = "shared"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("shared", "mixed", "online")

    actor_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the actor (CORL learning_rate)")
    critic_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the critics (CORL learning_rate)")
    awac_lambda: float = Field(0.3333, gt=0.0, description="λ, the temperature of the advantage weights exp(A/λ) (CORL: 1/3 MuJoCo, 0.1 AntMaze/Adroit)")
    exp_adv_max: float = Field(100.0, gt=0.0, description="clip of the advantage weights exp(A/λ)")
    hidden: Hidden = Field([256, 256, 256], description="hidden layer widths of the actor and of each critic")
    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3)")


class AWACConfig(OffPolicyConfig):
    settings: ClassVar[type[OffPolicySettings]] = AWACSettings
    module_class = "algorithms.awac.awac_module:AWACRLModule"
    updates_class_path = "algorithms.awac.awac_learner:AWACUpdates"
    default_paradigm = "offline"
    module_settings = ("hidden",)

    @classmethod
    def default_algo_class(cls) -> type:
        return AWAC


class AWAC(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> AWACConfig:
        return AWACConfig()
