"""SPOT (Wu et al. 2022): Supported Policy Optimization, on mprl's off-policy base.

Stages, on the gradient-update axis (both are counted in `num_updates_lifetime`):
  0 vae  — `vae_iterations` updates of the VAE behaviour model on the dataset (no env steps);
  1 td3  — TD3 with the density penalty λ·ELBO(s, π(s)) in the actor loss: offline on the
           dataset, or (hybrid) online fragments on one shared buffer with λ decayed as
           λ_t = λ · max(λ_end, 1 − t/T), t the phase's env steps, T `lambd_cool_steps`
           (default: the phase's env-step budget).
An iteration ends at the stage boundary; results carry `spot_stage` (0, 1: the stage the
iteration ran), `vae_updates`,
`lambd` and, in stage 0, `learner_stats/vae_loss`. A phase warm-started from a SPOT
checkpoint receives its trained VAE (and its `vae_updates` count) and skips stage 0.

Defaults: CORL `finetune/spot.py` (actor lr 1e-4, critic 3e-4, VAE 750×2 with lr 1e-3,
β 0.5, 100k VAE updates, head inits 1e-3 / 3e-3, λ_end 0.2) with thuml/SPOT's MuJoCo choices
(states normalised; λ = 0.1 from configs/offline/hopper-medium.yml: 0.05 halfcheetah m/mr,
0.2 walker m/mr, hopper-me 0.2). Not reproduced: the official code's actor dropout 0.1 (CORL
has none) and the IWAE density estimate; exploration noise is not clipped at noise_clip.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

from pydantic import Field

from algorithms.common.algorithm import OffPolicyAlgorithm, OffPolicyConfig
from algorithms.common.settings import HYBRID, ONLINE, OffPolicySettings
from algorithms.spot.spot_learner import cooled_lambda
from algorithms.td3.td3 import TD3Config, TD3Settings

STAGES = ("vae", "td3")


class SPOTSettings(TD3Settings):
    """CORL / thuml SPOT MuJoCo defaults (see the module docstring)."""

    default_hybrid_replay: ClassVar[str] = "shared"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("shared", "mixed", "online")
    #: `mprl bench learner` times the TD3 + density-penalty update, not the VAE stage
    bench_settings: ClassVar[dict] = {"vae_iterations": 0}

    actor_lr: float = Field(1e-4, gt=0.0, description="Adam learning rate of the actor (CORL)")
    critic_lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of the critics")
    normalize_obs: bool = Field(True, description="normalise states with the dataset's mean and std (+1e-3)")
    lambd: float = Field(0.1, ge=0.0, description="λ, weight of the density penalty (thuml: hopper-m 0.1, halfcheetah-m 0.05, walker-m 0.2; AntMaze 0.025–0.25; Adroit 1.0)")
    beta: float = Field(0.5, ge=0.0, description="β_KL of the VAE's ELBO")
    vae_lr: float = Field(1e-3, gt=0.0, description="Adam learning rate of the VAE")
    vae_hidden: int = Field(750, ge=1, description="width of the VAE's two hidden layers (encoder and decoder)")
    vae_latent_dim: Optional[int] = Field(None, ge=1, description="latent size of the VAE (None: 2·|A|)")
    vae_iterations: int = Field(100_000, ge=0, description="VAE pre-training updates (stage 0), counted on the updates axis")
    vae_updates_per_iteration: int = Field(5000, ge=1, description="VAE updates per training iteration of a hybrid phase (offline phases use updates_per_iteration)", json_schema_extra=HYBRID)
    actor_init_w: Optional[float] = Field(1e-3, gt=0.0, description="U(−w, w) init of the actor's output layer (None: PyTorch default)")
    critic_init_w: Optional[float] = Field(3e-3, gt=0.0, description="U(−w, w) init of the critics' output layers (None: PyTorch default)")
    lambd_cool: bool = Field(True, description="decay λ online: λ_t = λ·max(λ_end, 1 − t/T)", json_schema_extra=ONLINE)
    lambd_end: float = Field(0.2, ge=0.0, le=1.0, description="λ_end, the floor of the decay (CORL: AntMaze 0.2, Adroit 0.5)", json_schema_extra=ONLINE)
    lambd_cool_steps: Optional[int] = Field(None, ge=1, description="T of the decay in env steps (None: the phase's env-step budget)", json_schema_extra=ONLINE)
    random_steps: int = Field(0, ge=0, description="uniform-random actions for the first N env steps of a fresh phase (CORL fine-tuning: none)", json_schema_extra=ONLINE)
    learning_starts: int = Field(0, ge=0, description="env steps collected before the first update of a fresh phase", json_schema_extra=ONLINE)

    def phase_problems(self, paradigm: str, budget_unit: str, budget: int, warm_start: bool) -> list[tuple[str, str]]:
        out = super().phase_problems(paradigm, budget_unit, budget, warm_start)
        if paradigm == "offline" and not warm_start and self.vae_iterations >= budget:
            out.append(("vae_iterations", f"vae_iterations={self.vae_iterations:,} is not below the budget of {budget:,} updates (which includes "
                        "the VAE stage): the actor and critics would never train; lower vae_iterations or raise the budget"))
        return out


class SPOTConfig(TD3Config):
    settings: ClassVar[type[OffPolicySettings]] = SPOTSettings
    module_class = "algorithms.spot.spot_module:SPOTRLModule"
    updates_class_path = "algorithms.spot.spot_learner:SPOTUpdates"
    default_paradigm = "offline"
    module_settings = ("hidden", "exploration_noise", "vae_hidden", "vae_latent_dim", "actor_init_w", "critic_init_w")

    def get_default_rl_module_spec(self) -> Any:
        spec = super().get_default_rl_module_spec()
        # None is meaningful for these (PyTorch default init / 2·|A| latent): pass it through.
        spec.model_config = {**spec.model_config, **{k: getattr(self, k) for k in ("vae_latent_dim", "actor_init_w", "critic_init_w")}}
        return spec

    @classmethod
    def default_algo_class(cls) -> type:
        return SPOT


class SPOT(OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> OffPolicyConfig:
        return SPOTConfig()

    def setup(self, config: Any) -> None:
        super().setup(config)  # a warm start may bring a trained VAE
        self.vae_done = self.learner_vae_updates()

    def learner_vae_updates(self) -> int:
        results = self.learner_group.foreach_learner(lambda learner: learner.updates.vae_updates_done())
        return int(next(iter(results)).get())

    def stage(self) -> str:
        return "vae" if self.vae_done < self.config.vae_iterations else "td3"

    def current_lambda(self) -> float:
        c = self.config
        if c.paradigm == "offline" or not c.lambd_cool:
            return c.lambd
        horizon = c.lambd_cool_steps or c.budget_env_steps or 1_000_000
        return cooled_lambda(c.lambd, c.lambd_end, self.num_env_steps, horizon)

    def training_step(self) -> None:
        c = self.config
        self.iteration_stage = self.stage()
        if self.iteration_stage == "vae":
            per_iteration = c.updates_per_iteration if c.paradigm == "offline" else c.vae_updates_per_iteration
            budget = c.budget_updates if c.paradigm == "offline" else None
            n = min(self.remaining(budget, self.num_updates, per_iteration), c.vae_iterations - self.vae_done)
            if n:
                self.log_losses([self.call_learner("run_updates", n, "vae_update")])
                self.num_updates += n
            self.vae_done = self.learner_vae_updates()
            return
        if c.paradigm == "offline":
            self.offline_step("update", lambd=self.current_lambda())
        else:
            self.online_step()

    def fragment_updates(self, k: int, step: str = "update", **params: Any) -> dict[str, float]:
        return super().fragment_updates(k, step, lambd=self.current_lambda(), **params)

    def step(self) -> dict[str, Any]:
        results = super().step()
        results["spot_stage"] = STAGES.index(getattr(self, "iteration_stage", self.stage()))  # the stage this iteration ran
        results["vae_updates"] = self.vae_done
        results["lambd"] = self.current_lambda()
        return results

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.vae_done = self.learner_vae_updates()
