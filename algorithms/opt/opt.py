"""OPT: Online Pre-Training for offline-to-online RL (Shin et al., ICML 2025), as an RLlib algorithm.

Stages, on the environment-step axis of one hybrid phase (its budget includes N_τ):
  1. collect  — N_τ transitions with the frozen offline policy π_off into B_on, no updates;
  2. pretrain — N_pretrain updates of Q_on-pt on the meta-adaptation objective (no env steps);
  3. finetune — TD3-style fragments, `utd` updates per step, actor on the κ-blend of critics.
An iteration ends at a stage boundary, so each stage starts on a fresh result row; results
carry `opt_stage` (0, 1, 2), `kappa` and the env step / update at which each stage began.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm
from algorithms.common.online_pretraining import STAGES, OnlinePretrainingMixin, OnlinePretrainingSettings
from algorithms.common.settings import OffPolicySettings
from algorithms.td3.td3 import TD3Config, TD3Settings

__all__ = ["OPT", "STAGES", "OPTConfig", "OPTSettings"]


class OPTSettings(TD3Settings, OnlinePretrainingSettings):
    """The paper's MuJoCo settings: N_τ 25k, N_pretrain 50k, UTD 5, κ 0.3 → 0.9 over 150k, balanced replay
    (OPT's own settings are `OnlinePretrainingSettings`', shared with SPOT+OPT and IQL+OPT)."""

    default_hybrid_replay: ClassVar[str] = "balanced"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("balanced", "mixed", "online")
    #: `mprl bench learner`'s hybrid measurement times fine-tuning updates only: no collect or pre-train stage
    bench_settings: ClassVar[dict] = {"n_tau": 0, "n_pretrain": 0}

    use_q_on: bool = Field(True, description="False: no Q_on-pt; Q_off-pt is pre-trained and used alone (ablation)")
    utd: int = Field(5, ge=1, description="gradient updates per environment step during fine-tuning")
    random_steps: int = Field(0, ge=0, description="uniform-random actions for the first N env steps of a fresh phase")
    learning_starts: int = Field(0, ge=0, description="env steps before the first update of a fresh phase")
    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3)")

    def phase_problems(self, paradigm: str, budget_unit: str, budget: int, warm_start: bool) -> list[tuple[str, str]]:
        out = super().phase_problems(paradigm, budget_unit, budget, warm_start)
        if not self.use_q_on and self.pretrain_objective == "none":
            out.append(("pretrain_objective", "use_q_on=False pre-trains Q_off-pt with the objective; pretrain_objective 'none' leaves nothing to do"))
        return out


class OPTConfig(TD3Config):
    settings: ClassVar[type[OffPolicySettings]] = OPTSettings
    module_class = "algorithms.opt.opt_module:OPTRLModule"
    updates_class_path = "algorithms.opt.opt_learner:OPTUpdates"
    default_paradigm = "hybrid"

    @classmethod
    def default_algo_class(cls) -> type:
        return OPT


class OPT(OnlinePretrainingMixin, OffPolicyAlgorithm):
    """TD3+OPT: the stage machine is `OnlinePretrainingMixin`'s (algorithms/common/online_pretraining.py)."""

    @classmethod
    def get_default_config(cls) -> OPTConfig:
        return OPTConfig()
