"""TD3 (Fujimoto et al. 2018) on RLlib's new API stack, on mprl's off-policy base.

The online loop, counters, evaluation and checkpoints are the base's
(algorithms.common.algorithm); the math is algorithms.common.td3_core, shared with TD3+BC
and OPT; this file holds TD3's settings and defaults.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import ONLINE, OffPolicySettings


class TD3Settings(OffPolicySettings):
    """The TD3 paper's defaults: lr 3e-4, τ 0.005, σ 0.2, c 0.5, delay 2, 256×2, batch 256, 25k random steps."""

    actor_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the actor")
    critic_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the critics")
    policy_noise: float = Field(0.2, ge=0.0, description="σ of target policy smoothing, as a fraction of the half action range")
    noise_clip: float = Field(0.5, ge=0.0, description="c, the clip of the smoothing noise (same units)")
    policy_delay: int = Field(2, ge=1, description="critic updates per actor and target update")
    exploration_noise: float = Field(0.1, ge=0.0, description="σ of the Gaussian exploration noise, as a fraction of the half action range", json_schema_extra=ONLINE)
    random_steps: int = Field(25_000, ge=0, description="uniform-random actions for the first N env steps of a fresh phase (TD3's start_timesteps)", json_schema_extra=ONLINE)
    learning_starts: int = Field(25_000, ge=0, description="env steps collected before the first update of a fresh phase", json_schema_extra=ONLINE)


class TD3Config(OffPolicyConfig):
    settings: ClassVar[type[OffPolicySettings]] = TD3Settings
    module_class = "algorithms.td3.td3_module:TD3RLModule"
    updates_class_path = "algorithms.td3.td3_learner:TD3Updates"
    module_settings = ("hidden", "exploration_noise")

    @classmethod
    def default_algo_class(cls) -> type:
        return TD3


class TD3(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> TD3Config:
        return TD3Config()
