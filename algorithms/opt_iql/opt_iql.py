"""IQL+OPT: OPT (Shin et al., ICML 2025) on the IQL backbone (Kostrikov et al. 2022), as an RLlib algorithm.

One hybrid phase, warm-started from an IQL offline checkpoint (actor π_off, Q_off-pt with its
target, V_off-pt, the normaliser and the reward scale), runs OPT's stages on its environment-step
axis (`OnlinePretrainingMixin`, shared with TD3+OPT and SPOT+OPT):
  1. collect  — N_τ transitions with the frozen π_off into B_on, no updates;
  2. pretrain — N_pretrain meta-adaptation updates of the new pair (Q_on-pt, V_on-pt) on IQL's losses;
  3. finetune — IQL's updates at `utd` per env step for both pairs, the actor on exp(β · A_κ).
The learner's docstring (opt_iql_learner.py) has the equations and the choices we made where
the paper does not pin IQL down. Everything but OPT's own settings keeps IQL's fine-tuning
defaults (CORL: UTD 1, τ 0.7, β 3, Gaussian actor, constant actor lr online); replay defaults
to OPT's balanced replay.
"""

from __future__ import annotations

from typing import ClassVar

from algorithms.common.online_pretraining import OnlinePretrainingMixin, OnlinePretrainingSettings
from algorithms.common.settings import OffPolicySettings
from algorithms.iql.iql import IQL, IQLConfig, IQLSettings


class OPTIQLSettings(IQLSettings, OnlinePretrainingSettings):
    """IQL's settings (CORL's fine-tuning defaults) plus OPT's stage, κ and meta-adaptation settings."""

    default_hybrid_replay: ClassVar[str] = "balanced"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("balanced", "mixed", "online")
    #: `mprl bench learner`'s hybrid measurement times fine-tuning updates only: no collect or pre-train stage
    bench_settings: ClassVar[dict] = {"n_tau": 0, "n_pretrain": 0}


class OPTIQLConfig(IQLConfig):
    settings: ClassVar[type[OffPolicySettings]] = OPTIQLSettings
    module_class = "algorithms.opt_iql.opt_iql_module:OPTIQLRLModule"
    updates_class_path = "algorithms.opt_iql.opt_iql_learner:OPTIQLUpdates"
    default_paradigm = "hybrid"

    @classmethod
    def default_algo_class(cls) -> type:
        return OPTIQL


class OPTIQL(OnlinePretrainingMixin, IQL):
    """IQL's loop (its update counter reaches the learner's lr schedule) under OPT's stage machine."""

    @classmethod
    def get_default_config(cls) -> OPTIQLConfig:
        return OPTIQLConfig()
