"""CQL (Kumar et al. 2020) on mprl's off-policy base, with CORL's MuJoCo defaults
(algorithms/offline/cql.py, configs/offline/cql/*; fine-tuning as algorithms/finetune/cql.py).

The SAC backbone (tanh-Gaussian actor, twin critics, automatic temperature with target
entropy −|A|) plus, in each critic's loss, the conservative term

    α_cql · clip( T·logsumexp_k( [Q_i(s, a_k) − log μ(a_k)] / T ) − Q_i(s, a_data), clip_min, clip_max )

over N = cql_n_actions uniform actions (μ = 0.5^|A|), N actions of π(·|s) and N of π(·|s′)
(μ = π, all scored at s). The Lagrange variant replaces α_cql by α′·α_cql with the penalty
(diff − cql_target_action_gap), α′ = clamp(exp(log α′), 0, 1e6) trained by gradient ascent.
Online and hybrid phases continue with `cql_alpha_online` on one shared buffer, constant or
decayed over the phase's env steps (`cql_alpha_cool`, as SPOT's λ cooling).
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm
from algorithms.common.settings import OFFLINE, ONLINE, Hidden, OffPolicySettings
from algorithms.sac.sac import SACConfig, SACSettings


class CQLSettings(SACSettings):
    """CORL's MuJoCo defaults: α_cql 10, no Lagrange, policy lr 3e-5, Q lr 3e-4, 3×256, orthogonal critic init,
    states normalised, no entropy backup; SAC's temperature settings (initial_alpha, learn_alpha, target_entropy)."""

    default_hybrid_replay: ClassVar[str] = "shared"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("shared", "mixed", "online")

    actor_lr: float = Field(3e-5, gt=0.0, description="Adam learning rate of the actor (CORL policy_lr)")
    critic_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the critics (CORL qf_lr)")
    alpha_lr: float = Field(3e-5, gt=0.0, description="Adam learning rate of log α, the SAC temperature (CORL: policy_lr)")
    random_steps: int = Field(0, ge=0, description="uniform-random actions for the first N env steps of a fresh phase (CORL: none)", json_schema_extra=ONLINE)
    learning_starts: int = Field(0, ge=0, description="env steps collected before the first update of a fresh phase", json_schema_extra=ONLINE)
    cql_lagrange_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of log α′, the Lagrange multiplier (CORL: qf_lr)")
    hidden: Hidden = Field([256, 256, 256], description="hidden layer widths of the actor; the critics have q_n_hidden_layers layers of width hidden[-1]")
    q_n_hidden_layers: int = Field(3, ge=1, description="hidden layers of each critic (CORL: 3 MuJoCo, 5 AntMaze)")
    orthogonal_init: bool = Field(True, description="orthogonal init of the critics (gain √2, output gain 1e-2); the actor's output layer is Xavier with gain 1e-2 either way")
    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3)")
    reward_scale: float = Field(1.0, description="r ← reward_scale · r + reward_bias on every minibatch, dataset and online rows alike (CORL AntMaze: 10)")
    reward_bias: float = Field(0.0, description="see reward_scale (CORL AntMaze: −5)")
    backup_entropy: bool = Field(False, description="subtract α·log π(a′|s′) in the Bellman target (soft backup; CORL: off)")
    bc_steps: int = Field(0, ge=0, description="first updates with a BC actor loss α·log π − log π(a_data|s)")
    cql_alpha: float = Field(10.0, ge=0.0, description="α_cql, the weight of the conservative term (CORL: 10 MuJoCo, 5 AntMaze)", json_schema_extra=OFFLINE)
    cql_alpha_online: float = Field(10.0, ge=0.0, description="α_cql of online and hybrid phases (CORL finetune/cql.py)", json_schema_extra=ONLINE)
    cql_alpha_cool: bool = Field(False, description="decay α_cql online: α_t = cql_alpha_online·max(cql_alpha_end, 1 − t/T) (off: constant, CORL)", json_schema_extra=ONLINE)
    cql_alpha_end: float = Field(0.0, ge=0.0, le=1.0, description="the floor of the decay, a fraction of cql_alpha_online (0: the SAC backbone after T)", json_schema_extra=ONLINE)
    cql_alpha_cool_steps: int | None = Field(None, ge=1, description="T of the decay in env steps (None: the phase's env-step budget)", json_schema_extra=ONLINE)
    cql_n_actions: int = Field(10, ge=1, description="N, actions sampled per state for each logsumexp candidate set (and the max backup)")
    cql_importance_sample: bool = Field(True, description="importance-weighted logsumexp (subtract log μ of each candidate); otherwise plain, with Q(s, a_data) as a candidate")
    cql_temp: float = Field(1.0, gt=0.0, description="T of the logsumexp")
    cql_lagrange: bool = Field(False, description="Lagrange variant: α′ learnt so that the conservative gap meets cql_target_action_gap")
    cql_target_action_gap: float = Field(-1.0, description="τ of the Lagrange variant (CORL AntMaze: 0.8)")
    cql_max_target_backup: bool = Field(False, description="Bellman target max_k min_j Q̄_j(s′, a′_k) over N actions a′_k ~ π(·|s′) (CORL AntMaze)")
    cql_clip_diff_min: float = Field(-math.inf, description="lower clip of logsumexp − Q(s, a_data) (CORL AntMaze: −200)")
    cql_clip_diff_max: float = Field(math.inf, description="upper clip of logsumexp − Q(s, a_data)")

    def critic_hidden(self) -> list[int]:
        return [self.hidden[-1]] * self.q_n_hidden_layers


class CQLConfig(SACConfig):
    settings: ClassVar[type[OffPolicySettings]] = CQLSettings
    module_class = "algorithms.cql.cql_module:CQLRLModule"
    updates_class_path = "algorithms.cql.cql_learner:CQLUpdates"
    default_paradigm = "offline"
    module_settings = ("hidden", "initial_alpha", "q_n_hidden_layers", "orthogonal_init")

    @classmethod
    def default_algo_class(cls) -> type:
        return CQL


class CQL(OffPolicyAlgorithm):  # the base's loop, as SAC's
    @classmethod
    def get_default_config(cls) -> CQLConfig:
        return CQLConfig()
