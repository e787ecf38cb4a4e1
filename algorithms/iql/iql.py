"""IQL (Kostrikov, Nair & Levine 2022) on mprl's off-policy base: offline, online, and
offline → online fine-tuning on one shared buffer (CORL finetune/iql.py).

Defaults are CORL's MuJoCo ones: τ 0.7, β 3, lr 3e-4 for actor, Q and V, Polyak 0.005,
2×256 networks, states normalised, cosine actor schedule over the offline updates.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import OFFLINE, ONLINE, OffPolicySettings


class IQLSettings(OffPolicySettings):
    """CORL configs/{offline,finetune}/iql MuJoCo: iql_tau 0.7, beta 3.0, lrs 3e-4, tau 0.005, normalize true."""

    default_hybrid_replay: ClassVar[str] = "shared"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("shared", "mixed", "online")

    actor: Literal["gaussian", "deterministic"] = Field("gaussian", description="gaussian: tanh-mean Gaussian, state-independent log σ, loss −log π(a|s); deterministic: loss ‖π(s)−a‖² (CORL iql_deterministic)")
    expectile: float = Field(0.7, gt=0.0, lt=1.0, description="τ of the expectile value loss |τ − 1(u<0)|·u² (CORL iql_tau)")
    beta: float = Field(3.0, ge=0.0, description="inverse temperature β of the advantage weights exp(β·(Q−V))")
    max_weight: float = Field(100.0, gt=0.0, description="clip of the advantage weights exp(β·(Q−V)) (CORL EXP_ADV_MAX)")
    actor_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the actor (start of its schedule)")
    critic_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the twin Q (CORL qf_lr)")
    value_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of V (CORL vf_lr)")
    actor_lr_schedule: Literal["auto", "cosine", "constant"] = Field(
        "auto", description="auto: cosine to 0 over the phase's update budget in offline phases, constant in online/hybrid ones; cosine: anneal in any paradigm (online: over budget × utd updates); constant")
    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3)")
    normalize_reward: bool = Field(False, description="r ← r·1000/(max−min episode return of the dataset), online rewards too (CORL normalize_reward; on for hopper-medium(-replay))")
    exploration_noise: float = Field(0.03, ge=0.0, description="σ of the Gaussian exploration noise of the deterministic actor, as a fraction of the half action range (the Gaussian actor samples)", json_schema_extra=ONLINE)
    updates_per_iteration: int = Field(5000, ge=1, description="gradient updates per training iteration of an offline phase (set by evaluation.interval)", json_schema_extra=OFFLINE)

    @model_validator(mode="after")
    def _noise_needs_deterministic_actor(self) -> IQLSettings:
        if self.actor == "gaussian" and self.exploration_noise != type(self).model_fields["exploration_noise"].default:
            raise ValueError("exploration_noise is the deterministic actor's; the Gaussian actor explores by sampling: remove it or set actor: deterministic")
        return self

    def phase_problems(self, paradigm: str, budget_unit: str, budget: int, warm_start: bool) -> list[tuple[str, str]]:
        out = super().phase_problems(paradigm, budget_unit, budget, warm_start)
        if self.normalize_reward and paradigm == "online" and not warm_start:
            out.append(("normalize_reward", "normalize_reward scales rewards by the dataset's episode-return range, and a fresh online phase has no dataset: "
                        "warm-start it from an IQL phase that normalised its rewards (the scale travels with the checkpoint), use a hybrid phase, or remove it"))
        return out


class IQLConfig(OffPolicyConfig):
    settings: ClassVar[type[OffPolicySettings]] = IQLSettings
    module_class = "algorithms.iql.iql_module:IQLRLModule"
    updates_class_path = "algorithms.iql.iql_learner:IQLUpdates"
    default_paradigm = "offline"
    module_settings = ("hidden", "actor", "exploration_noise")

    @classmethod
    def default_algo_class(cls) -> type:
        return IQL

    def validate(self) -> None:
        super().validate()
        if self.actor_lr_schedule == "cosine" and self.budget_updates is None and self.budget_env_steps is None:
            self._value_error("actor_lr_schedule cosine anneals over the phase's budget: set budget_updates or budget_env_steps")


class IQL(OffPolicyAlgorithm):
    """The base loop; the learner gets the update counter so the lr schedule survives restores."""

    @classmethod
    def get_default_config(cls) -> IQLConfig:
        return IQLConfig()

    def setup(self, config: Any) -> None:
        super().setup(config)
        if self.config.normalize_reward and self.config.paradigm == "online" and self.config.init_checkpoint:
            scale = (self.transfer_report or {}).get("copied", [])
            if "reward_scale" not in scale:
                raise ValueError("normalize_reward in an online phase uses the reward scale of the IQL checkpoint it starts from, "
                                 f"and {self.config.init_checkpoint} carries none: use a hybrid phase with the dataset, or remove normalize_reward")

    def offline_step(self, step: str = "update", **params: Any) -> None:
        super().offline_step(step, updates_done=self.num_updates, **params)

    def fragment_updates(self, k: int, step: str = "update", **params: Any) -> dict[str, float]:
        return super().fragment_updates(k, step, updates_done=self.num_updates, **params)
