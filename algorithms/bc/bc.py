"""BC and x%-BC (CORL any_percent_bc) on mprl's off-policy base: offline only.

The actor imitates the dataset's actions; `top_fraction` keeps only the best episodes first
(10%-BC: 0.1). Defaults are CORL's: 2×256, lr 3e-4, batch 256, states normalised.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import OffPolicySettings


class BCSettings(OffPolicySettings):
    """CORL any_percent_bc: 2×256 ReLU + tanh, lr 3e-4, batch 256, normalize true, frac 1.0 (BC) / 0.1 (10%-BC)."""

    # BC trains no critic and has no target networks.
    unused_settings: ClassVar[tuple[str, ...]] = ("tau", "transfer_targets")

    head: Literal["deterministic", "gaussian"] = Field(
        "deterministic", description="deterministic: squared error ‖π(s)−a‖² (CORL); gaussian: log-likelihood −log π(a|s) (tanh-mean Gaussian, state-independent σ)")
    actor_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the actor")
    top_fraction: float = Field(1.0, gt=0.0, le=1.0, description="keep the best fraction of the dataset's episodes by discounted return (0.1: 10%-BC; 1.0: all)")
    gamma: float = Field(0.99, gt=0.0, le=1.0, description="γ of the discounted episode return that top_fraction ranks episodes by (CORL's discount)")
    normalize_obs: bool = Field(True, description="normalise states with the (kept) dataset's mean and std (+1e-3)")
    updates_per_iteration: int = Field(5000, ge=1, description="gradient updates per training iteration (set by evaluation.interval)")


class BCConfig(OffPolicyConfig):
    settings: ClassVar[type[OffPolicySettings]] = BCSettings
    module_class = "algorithms.bc.bc_module:BCRLModule"
    updates_class_path = "algorithms.bc.bc_learner:BCUpdates"
    default_paradigm = "offline"
    module_settings = ("hidden", "head")

    @classmethod
    def default_algo_class(cls) -> type:
        return BC


class BC(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> BCConfig:
        return BCConfig()
