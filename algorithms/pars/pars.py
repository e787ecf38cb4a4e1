"""PARS (Kim et al., ICML 2025) on mprl's off-policy base: TD3+BC with RS-LN and PA.

RS-LN: rewards scaled by c (`reward_scale`) with LayerNorm after every hidden layer of the
critics, so Q decreases gradually outside the data instead of extrapolating linearly; PA: the
critics are pulled towards Q_min on infeasible actions far outside the action box; an
ensemble of `num_critics` critics with a random subset of `target_subset` for each target.
Online and hybrid phases: UTD 20, actor every update on the mean of a random subset of
critics, each batch half dataset, half online rows (`replay: mixed`, offline_ratio 0.5).

**Unverified values.** The official code (LG AI Research) could not be reached from here;
every default below comes from a third-party reimplementation quoting the paper's Tables
8–11 (notes §2.11) and none is checked against the paper or the official configs: c = 10
(hopper, walker, Adroit; halfcheetah 5; AntMaze 1e3–1e4), N = 10 critics (AntMaze 4), target
subset 2 (offline 2 or 10 per dataset, online 2), L = 100 (AntMaze offline 1000), Q_min −166
(hopper; halfcheetah −366, walker −229), α 1e-4 (MuJoCo offline 1e-4 or 1e-2; online
1e-4–1e-1), β 0 on MuJoCo (AntMaze 0.005–0.01, Adroit 0.01–0.1), UTD 20, online offline-data
ratio 0.5, exploration noise 0.1. The online actor's subset size (`actor_subset_online`, 2)
is not given there at all, and its BC weight online is `beta_online` (the reimplementation
notes the released JAX code reads `beta` where `online_beta` is meant). Take exact values
from LGAI's own configs when they can be read.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import HYBRID, OFFLINE, ONLINE, OffPolicySettings
from algorithms.td3.td3 import TD3Config, TD3Settings


class PARSSettings(TD3Settings):
    """MuJoCo (hopper) values of notes §2.11 — unverified against the paper's code (module docstring)."""

    default_hybrid_replay: ClassVar[str] = "mixed"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("mixed", "shared", "online")

    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3), as TD3+BC")
    num_critics: int = Field(10, ge=2, description="N, critics of the LayerNorm ensemble (AntMaze: 4)")
    reward_scale: float = Field(10.0, gt=0.0, description="c of RS-LN: r ← c·r on every minibatch, dataset and online rows (hopper/walker/Adroit 10, halfcheetah 5, AntMaze 1e3–1e4)")
    target_subset: int = Field(2, ge=1, description="S_k, critics in the random subset whose minimum is the target (offline: 2 or 10 per dataset)", json_schema_extra=OFFLINE)
    target_subset_online: int = Field(2, ge=1, description="S_k of online and hybrid phases", json_schema_extra=ONLINE)
    infeasible_L: float = Field(100.0, gt=1.0, description="L: infeasible actions are drawn from [−2L, −L] ∪ [L, 2L] per dimension (unit actions; AntMaze offline 1000)")
    q_min: float = Field(-166.0, description="Q_min, the value PA pulls Q(s, a_I) towards (hopper −166, halfcheetah −366, walker −229, AntMaze 0)")
    pa_alpha: float = Field(1e-4, ge=0.0, description="α, weight of L_PA offline (MuJoCo 1e-4 or 1e-2 per dataset; AntMaze 1e-3)", json_schema_extra=OFFLINE)
    pa_alpha_online: float = Field(1e-4, ge=0.0, description="α of online and hybrid phases (1e-4–1e-1)", json_schema_extra=ONLINE)
    beta: float = Field(0.0, ge=0.0, description="β, weight of the BC term offline (MuJoCo 0; AntMaze 0.005–0.01; Adroit 0.01–0.1)", json_schema_extra=OFFLINE)
    beta_online: float = Field(0.0, ge=0.0, description="β of online and hybrid phases", json_schema_extra=ONLINE)
    actor_subset_online: int = Field(2, ge=1, description="critics in the random subset whose mean the online actor maximises", json_schema_extra=ONLINE)
    policy_delay: int = Field(2, ge=1, description="critic updates per actor and target update offline (TD3+BC)", json_schema_extra=OFFLINE)
    policy_delay_online: int = Field(1, ge=1, description="critic updates per actor and target update online", json_schema_extra=ONLINE)
    utd: int = Field(20, ge=1, description="gradient updates per environment step", json_schema_extra=ONLINE)
    offline_ratio: float = Field(0.5, ge=0.0, le=1.0, description="fraction of each hybrid batch from the dataset with replay: mixed (0.05 for halfcheetah and random datasets)", json_schema_extra=HYBRID)
    updates_per_iteration: int = Field(5000, ge=1, description="gradient updates per training iteration (set by evaluation.interval)", json_schema_extra=OFFLINE)

    @model_validator(mode="after")
    def _subsets_fit(self) -> "PARSSettings":
        for name in ("target_subset", "target_subset_online", "actor_subset_online"):
            if getattr(self, name) > self.num_critics:
                raise ValueError(f"{name}={getattr(self, name)} is larger than the ensemble (num_critics={self.num_critics})")
        return self


class PARSConfig(TD3Config):
    settings: ClassVar[type[OffPolicySettings]] = PARSSettings
    module_class = "algorithms.pars.pars_module:PARSRLModule"
    updates_class_path = "algorithms.pars.pars_learner:PARSUpdates"
    default_paradigm = "offline"
    module_settings = ("hidden", "exploration_noise", "num_critics")

    @classmethod
    def default_algo_class(cls) -> type:
        return PARS


class PARS(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> OffPolicyConfig:
        return PARSConfig()
