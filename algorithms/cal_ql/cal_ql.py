"""Cal-QL (Nakamoto et al. 2023) on mprl's off-policy base: CQL (algorithms.cql) whose
conservative term bounds the policy-action Q-values below by V^μ(s), the Monte-Carlo
return-to-go (cal_ql_learner).

Offline phases pre-train on the dataset; hybrid phases fine-tune with each batch half dataset,
half online rows (`replay: mixed`, offline_ratio 0.5 = CORL/Q `mixing_ratio`), keeping the
calibration on with the return-to-go of each finished online episode (the original's choice;
CORL switches it off online and stores 0). Defaults: CORL `finetune/cal_ql.py`'s TrainConfig
(CQL's MuJoCo values — α_cql 10, policy lr 3e-5, Q lr 3e-4, orthogonal init, states normalised,
no entropy backup — with 2 critic hidden layers). AntMaze in CORL/Q: α_cql 5, Lagrange gap 0.8,
max backup, r ← 10r − 5, `sparse_failure_reward` = the failure reward (0 before the transform).
"""

from __future__ import annotations

from typing import ClassVar, Optional

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import HYBRID, OffPolicySettings
from algorithms.cql.cql import CQLConfig, CQLSettings


class CalQLSettings(CQLSettings):
    """CORL finetune/cal_ql.py defaults; the 50/50 mixed fine-tuning buffer."""

    default_hybrid_replay: ClassVar[str] = "mixed"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("mixed", "shared", "online")

    q_n_hidden_layers: int = Field(2, ge=1, description="hidden layers of each critic (CORL cal_ql: 2; AntMaze 5 / Q 4)")
    calibration: bool = Field(True, description="bound the policy-action Q-values below by V^μ(s) (False: plain CQL, for ablations)")
    sparse_failure_reward: Optional[float] = Field(None, description="sparse tasks: an episode whose rewards all equal this (before reward_scale/bias) gets r/(1 − γ) as its return-to-go (CORL is_sparse_reward; AntMaze 0)")
    offline_ratio: float = Field(0.5, ge=0.0, le=1.0, description="fraction of each fine-tuning batch from the dataset (CORL/Q mixing_ratio)", json_schema_extra=HYBRID)


class CalQLConfig(CQLConfig):
    settings: ClassVar[type[OffPolicySettings]] = CalQLSettings
    updates_class_path = "algorithms.cal_ql.cal_ql_learner:CalQLUpdates"

    @classmethod
    def default_algo_class(cls) -> type:
        return CalQL


class CalQL(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> OffPolicyConfig:
        return CalQLConfig()

    def step(self) -> dict:
        results = super().step()
        if self.config.paradigm != "offline":
            out = self.learner_group.foreach_learner(lambda learner: learner.online_rtg.finished if learner.online_rtg is not None else 0)
            results["finished_online_episodes"] = next(iter(out)).get()
        return results
