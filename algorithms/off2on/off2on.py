"""Off2On (Lee, Seo, Lee, Abbeel & Shin 2022): offline-to-online RL via balanced replay and a
pessimistic Q-ensemble, on mprl's off-policy base (O = shlee94/Off2OnRL, `rlkit/examples/ours.py`,
`rlkit/rlkit/torch/sac/ours.py`).

Pre-training is K independent offline CQL agents (K seeds of a `cql` phase); the fine-tuning
phase starts from all of them at once, member k from checkpoint k:

    init_from: {phase: offline, top_k: 5, as: ensemble}

Fine-tuning is SAC with no CQL term over the ensemble (off2on_learner) and balanced replay:
every minibatch is drawn from dataset ∪ online rows with priorities w(s, a)^(1/T) of a
density-ratio network (`replay: balanced`, T = `balanced_temperature`).

Defaults are O's `examples/ours.py`: K = 5, T = 5, Adam 3e-4 for the actor, critics, α and the
density-ratio network, batch 256, τ 0.005, γ 0.99, α₀ 1 (the trainer's `init_alpha`; the CQL
members' α is not carried), H̄ = −|A|, and the target critics re-synced from the loaded critics
(`transfer_targets: sync`; O `target_qf.load_state_dict(qf.state_dict())`). States are normalised
as the CQL members were (their normaliser is carried). Differences: w's output is softplus (the
network OPT shares) where O applies ReLU, with O's output bias 1; O's `first_epoch_multiplier`
and `init_online_fraction` (a longer first epoch; an online buffer filled to a fraction before
the first update) are not modelled: a warm-started phase updates from its first fragment.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import ONLINE, OffPolicySettings
from algorithms.sac.sac import SACConfig, SACSettings


class Off2OnSettings(SACSettings):
    """The paper's settings: K = 5 CQL agents, balanced replay with T = 5, lr 3e-4, batch 256."""

    default_hybrid_replay: ClassVar[str] = "balanced"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("balanced", "mixed", "shared", "online")
    #: the setting that says how many checkpoints `init_from: {..., as: ensemble}` must hand on
    ensemble_setting: ClassVar[str] = "ensemble_size"

    ensemble_size: int = Field(5, ge=1, description="K, members of the ensemble, each a tanh-Gaussian actor and twin critics (O ensemble_size)")
    density_ratio_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the density-ratio network w(s, a) (O weight_net_lr)")
    balanced_temperature: float = Field(5.0, gt=0.0, description="T of balanced replay's priorities w^(1/T) (O temperature)")
    transfer_targets: Literal["copy", "sync"] = Field("sync", description="warm start: re-sync the target critics from the loaded critics (O), or copy the sources' targets")
    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3); a warm start carries the CQL members'")
    random_steps: int = Field(0, ge=0, description="uniform-random actions for the first N env steps of a fresh phase", json_schema_extra=ONLINE)
    learning_starts: int = Field(0, ge=0, description="env steps collected before the first update of a fresh phase", json_schema_extra=ONLINE)


class Off2OnConfig(SACConfig):
    settings: ClassVar[type[OffPolicySettings]] = Off2OnSettings
    module_class = "algorithms.off2on.off2on_module:Off2OnRLModule"
    updates_class_path = "algorithms.off2on.off2on_learner:Off2OnUpdates"
    default_paradigm = "hybrid"
    module_settings = ("hidden", "initial_alpha", "ensemble_size")

    @classmethod
    def default_algo_class(cls) -> type:
        return Off2On


class Off2On(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> OffPolicyConfig:
        return Off2OnConfig()
