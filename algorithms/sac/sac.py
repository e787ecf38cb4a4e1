"""SAC (Haarnoja et al. 2018) on mprl's off-policy base: settings, config and algorithm.

The loop, counters, evaluation and checkpoints are the base's (algorithms.common.algorithm);
the math is algorithms.sac.sac_learner; the networks algorithms.sac.sac_module.

Defaults are the paper's (arXiv:1812.05905, Table 1) and its code's: Adam 3e-4 for actor,
critics and α; τ 0.005; batch 256; 256×256 ReLU MLPs; uniform replay of 1M; one update per
env step; α learnt from 1.0 towards the entropy target −|A|. The first 5,000 env steps of
a fresh phase are uniform-random and updates start after them (as CleanRL and Stable-Baselines3
references do; the paper's code used 1k–10k by domain). A warm-started phase skips both.

Hybrid phases (a dataset in the replay): `mixed` by default, half of each batch from the
dataset and half from the online replay — RLPD's symmetric sampling (Ball et al. 2023), which
Cal-QL also uses online — because a shared buffer of a large dataset and a small, growing
replay would show SAC almost only offline rows early on. `shared` (CORL's fine-tuning
buffer) and `online` are available through `replay:`.
"""

from __future__ import annotations

from typing import ClassVar, Optional

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import ONLINE, OffPolicySettings


class SACSettings(OffPolicySettings):
    """SAC's settings; defaults are the paper's (lr 3e-4 everywhere, τ 0.005, 256×2, batch 256, α₀ 1, H̄ = −|A|)."""

    default_hybrid_replay: ClassVar[str] = "mixed"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("mixed", "shared", "online")

    actor_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the actor")
    critic_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the critics")
    alpha_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the temperature (on log α)")
    initial_alpha: float = Field(1.0, gt=0.0, description="temperature α at the start of a fresh phase (a warm start from SAC carries the source's)")
    learn_alpha: bool = Field(True, description="learn α towards the entropy target (False: α stays initial_alpha)")
    target_entropy: Optional[float] = Field(None, description="entropy target H̄ of the temperature loss (None: −|A|)")
    backup_entropy: bool = Field(True, description="subtract α log π(a′|s′) in the critic target (soft Bellman backup)")
    random_steps: int = Field(5_000, ge=0, description="uniform-random actions for the first N env steps of a fresh phase", json_schema_extra=ONLINE)
    learning_starts: int = Field(5_000, ge=0, description="env steps collected before the first update of a fresh phase", json_schema_extra=ONLINE)


class SACConfig(OffPolicyConfig):
    settings: ClassVar[type[OffPolicySettings]] = SACSettings
    module_class = "algorithms.sac.sac_module:SACRLModule"
    updates_class_path = "algorithms.sac.sac_learner:SACUpdates"
    module_settings = ("hidden", "initial_alpha", "n_critics")

    @classmethod
    def default_algo_class(cls) -> type:
        return SAC


class SAC(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> SACConfig:
        return SACConfig()
