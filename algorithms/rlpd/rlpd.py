"""RLPD (Ball, Smith, Kostrikov & Levine 2023): online RL with offline data, no pre-training.

SAC with three changes (P = ikostrikov/rlpd, `configs/rlpd_config.py`, `train_finetuning.py`):
10 critics with LayerNorm whose target is the minimum of a fresh random pair; every batch half
dataset, half online rows (`replay: mixed`, offline_ratio 0.5); UTD G = 20 drawn as one G×B
batch split into G slices (G critic steps, then one actor and one temperature step).

One update (num_updates_lifetime) is one critic step: an env step costs G updates, and
results report `actor_updates_lifetime` (= updates / G) beside it; see rlpd_learner.

Defaults (locomotion, P): lr 3e-4 everywhere, 256×2, batch 256, τ 0.005, γ 0.99, initial
temperature 1, H̄ = −|A|/2, backup entropy on, `start_training` 5000 random steps,
`pretrain_steps` 0. AntMaze/Adroit in P: backup_entropy off, 3×256; AntMaze also
num_min_qs 1 and r − 1.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

from pydantic import Field, model_validator

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import HYBRID, ONLINE, OffPolicySettings
from algorithms.sac.sac import SACConfig, SACSettings


class RLPDSettings(SACSettings):
    """P's locomotion defaults: 10 LayerNorm critics, random pair targets, 50/50 sampling, UTD 20, 5000 random steps."""

    default_hybrid_replay: ClassVar[str] = "mixed"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("mixed", "shared", "online")

    num_qs: int = Field(10, ge=1, description="N, critics of the ensemble (P num_qs)")
    num_min_qs: int = Field(2, ge=1, description="size of the random subset whose minimum is the target, drawn afresh each critic step (P num_min_qs; AntMaze 1)")
    critic_layer_norm: bool = Field(True, description="LayerNorm after every hidden layer of the critics")
    target_entropy: Optional[float] = Field(None, description="entropy target H̄ (None: −|A|/2, P's default)")
    utd: int = Field(20, ge=1, description="G: critic updates per env step, drawn as one G×B batch; one actor and one temperature step per G", json_schema_extra=ONLINE)
    offline_ratio: float = Field(0.5, ge=0.0, le=1.0, description="fraction of each batch (and of each slice) from the dataset with replay: mixed", json_schema_extra=HYBRID)
    random_steps: int = Field(5_000, ge=0, description="uniform-random actions for the first N env steps (P start_training)", json_schema_extra=ONLINE)
    learning_starts: int = Field(5_000, ge=0, description="env steps before the first update (P start_training)", json_schema_extra=ONLINE)

    @model_validator(mode="after")
    def _subset_fits(self) -> "RLPDSettings":
        if self.num_min_qs > self.num_qs:
            raise ValueError(f"num_min_qs={self.num_min_qs} is larger than the ensemble (num_qs={self.num_qs})")
        return self


class RLPDConfig(SACConfig):
    settings: ClassVar[type[OffPolicySettings]] = RLPDSettings
    module_class = "algorithms.rlpd.rlpd_module:RLPDRLModule"
    updates_class_path = "algorithms.rlpd.rlpd_learner:RLPDUpdates"
    default_paradigm = "hybrid"
    module_settings = ("hidden", "initial_alpha", "num_qs", "critic_layer_norm")

    @classmethod
    def default_algo_class(cls) -> type:
        return RLPD


class RLPD(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> OffPolicyConfig:
        return RLPDConfig()

    def step(self) -> dict[str, Any]:
        results = super().step()
        results["critic_updates_lifetime"] = self.num_updates
        results["actor_updates_lifetime"] = self.num_updates // self.config.utd
        return results
