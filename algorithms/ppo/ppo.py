"""PPO on RLlib's new API stack, as an mprl phase algorithm.

RLlib's own PPO — its learner (clipped surrogate, value loss, entropy bonus, optional KL
penalty), its GAE connector, its RL module (Gaussian actor with state-dependent log-std, V
head) and its env runners, which step environments in parallel on a cluster with
`num_env_runners` — with mprl's phase behaviour mixed in (PhaseAlgorithmMixin): counters on
both axes, an exact env-step budget, deterministic evaluation (the Gaussian mean mapped to the
action bounds), checkpoints that carry the counters, and warm start through mprl.transfer.

One mprl iteration = `env_steps_per_iteration` env steps (the evaluation interval), made of
PPO rounds: sample min(train_batch_size_per_learner, what is left) env steps, then
`num_epochs` passes of minibatches of `minibatch_size` over them. The last round is cut so the
budget is met exactly (with one env per runner). One update = one minibatch gradient step.

Defaults are the PPO paper's MuJoCo settings (Table 3): horizon 2048, Adam 3e-4, 10 epochs,
minibatch 64, γ 0.99, λ 0.95, clip ε 0.2, 64×64 tanh networks, no KL penalty; gradient norm
clipped at 0.5 and value coefficient 0.5 as in OpenAI baselines' ppo2.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field
from ray.rllib.algorithms.ppo import PPO as RLlibPPO
from ray.rllib.algorithms.ppo import PPOConfig as RLlibPPOConfig
from ray.rllib.core import ALL_MODULES
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
)

from algorithms.common.phase_algorithm import PhaseAlgorithmMixin, PhaseConfigMixin
from algorithms.common.settings import Hidden, Settings

ONLINE = {"paradigms": ("online",)}


class PPOSettings(Settings):
    """What a PPO phase's `config:` may set; each is read by RLlib's PPO or by mprl's loop around it."""

    lr: float = Field(3e-4, gt=0.0, description="Adam learning rate (actor and value function share one optimiser)")
    gamma: float = Field(0.99, gt=0.0, le=1.0, description="discount factor γ")
    lambda_: float = Field(0.95, ge=0.0, le=1.0, description="GAE λ")
    clip_param: float = Field(0.2, gt=0.0, description="ε of the clipped surrogate objective")
    vf_clip_param: float = Field(10_000.0, gt=0.0, description="clamp of the squared value error (RLlib's; large: no clamp, as MuJoCo returns are large)")
    vf_loss_coeff: float = Field(0.5, ge=0.0, description="weight of the value loss")
    entropy_coeff: float = Field(0.0, ge=0.0, description="weight of the entropy bonus")
    use_kl_loss: bool = Field(False, description="add RLlib's adaptive KL penalty to the loss")
    kl_coeff: float = Field(0.2, ge=0.0, description="initial KL penalty coefficient (with use_kl_loss)")
    kl_target: float = Field(0.01, gt=0.0, description="KL target of the adaptive penalty (with use_kl_loss)")
    num_epochs: int = Field(10, ge=1, description="passes over each sampled batch")
    minibatch_size: int = Field(64, ge=1, description="rows per gradient step")
    train_batch_size_per_learner: int = Field(2048, ge=1, description="env steps sampled per PPO round (the horizon, summed over env runners)")
    grad_clip: float = Field(0.5, gt=0.0, description="global gradient-norm clip")
    hidden: Hidden = Field([64, 64], description="hidden layer widths of the actor and of the value function")
    activation: Literal["tanh", "relu", "silu", "elu"] = Field("tanh", description="activation of the hidden layers")
    vf_share_layers: bool = Field(False, description="one encoder for actor and value function (the PPO paper uses separate ones on MuJoCo)")
    num_env_runners: int = Field(0, ge=0, description="remote env runners that sample in parallel (0: in the trial's process)")
    num_envs_per_env_runner: int = Field(1, ge=1, description="vectorised envs per env runner (>1: a round may exceed its size by < this many steps)")
    torch_num_threads: int = Field(1, ge=1, description="torch intra-op threads of the learner process")
    transfer_optimizer: bool = Field(False, description="warm start: carry the source's optimiser state")
    transfer_log_std_init: float | None = Field(None, description="warm start of the Gaussian head from a deterministic actor: constant log-std (None: fresh init)")
    transfer_allow_activation_mismatch: bool = Field(False, description="warm start: copy layers whose activations differ (function not preserved)")
    # Set by the runner from `evaluation.interval:` (one training iteration = one evaluation interval).
    env_steps_per_iteration: int = Field(2048, ge=1, description="env steps per training iteration (set by evaluation.interval)", json_schema_extra=ONLINE)

    def phase_problems(self, paradigm: str, budget_unit: str, budget: int, warm_start: bool) -> list[tuple[str, str]]:
        if self.minibatch_size > self.train_batch_size_per_learner:
            return [("minibatch_size", (f"minibatch_size={self.minibatch_size} exceeds train_batch_size_per_learner={self.train_batch_size_per_learner}: "
                                        "a round would have no full minibatch; lower it"))]
        return []


class PPOConfig(PhaseConfigMixin, RLlibPPOConfig):
    """RLlib's PPOConfig with mprl's phase settings; defaults from `settings`."""

    settings: ClassVar[type[Settings]] = PPOSettings
    default_paradigm: ClassVar[str] = "online"

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        return tuple(cls.settings.model_fields)

    @property
    def extra_settings(self) -> tuple[str, ...]:  # PhaseConfigMixin.training() accepts these
        return ("hidden", "activation", "vf_share_layers", "env_steps_per_iteration", "paradigm", "transfer_targets")

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or PPO)
        self.init_phase_settings()
        for name, value in self.settings().model_dump().items():
            setattr(self, name, value)
        self.paradigm = self.default_paradigm
        # One mprl iteration per RLlib iteration: the budget and evaluation interval decide.
        self.min_time_s_per_iteration = None
        self.min_sample_timesteps_per_iteration = 0
        self.min_train_timesteps_per_iteration = 0

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        spec = super().get_default_rl_module_spec()
        spec.model_config = {"fcnet_hiddens": list(self.hidden), "fcnet_activation": self.activation, "head_fcnet_hiddens": [],
                             "vf_share_layers": bool(self.vf_share_layers)}
        return spec

    def settings_values(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.setting_names()}

    def validate(self) -> None:
        super().validate()
        problems = [m for _, m, _ in self.settings.problems(self.settings_values())]
        problems += [m for _, m in self.settings.model_validate(self.settings_values()).phase_problems("online", "env_steps", 0, False)]
        if self.paradigm != "online":
            problems.append(f"PPO runs online phases only, got paradigm {self.paradigm!r}")
        if self.num_learners > 1:
            problems.append("mprl counts PPO updates per learner; use num_learners 0 or 1")
        if problems:
            self._value_error("; ".join(problems))


class PPO(PhaseAlgorithmMixin, RLlibPPO):
    @classmethod
    def get_default_config(cls) -> PPOConfig:
        return PPOConfig()

    def _lifetime(self, *key: str) -> float:
        return float(self.metrics.peek(key, default=0) or 0)

    def _sample(self, num_steps: int) -> list[Any]:
        """Exactly `num_steps` env steps (one env per runner), spread over the env runners."""
        group = self.env_runner_group
        if group.num_remote_env_runners() == 0:
            episodes = self.env_runner.sample(num_timesteps=num_steps, random_actions=False)
            self.metrics.aggregate([self.env_runner.get_metrics()], key=ENV_RUNNER_RESULTS)
            return episodes
        n = group.num_remote_env_runners()
        shares = [num_steps // n + (1 if i < num_steps % n else 0) for i in range(n)]
        out = group.foreach_env_runner(
            lambda r: (r.sample(num_timesteps=shares[r.worker_index - 1], random_actions=False) if shares[r.worker_index - 1] else [], r.get_metrics()),
            local_env_runner=False,
        )
        self.metrics.aggregate([m for _, m in out], key=ENV_RUNNER_RESULTS)
        return [ep for eps, _ in out for ep in eps]

    def training_step(self) -> None:
        c = self.config
        target = self.remaining(c.budget_env_steps, self.num_env_steps, c.env_steps_per_iteration)
        collected = 0
        trained_key = (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME)
        while collected < target:
            episodes = self._sample(min(c.total_train_batch_size, target - collected))
            k = sum(len(ep) for ep in episodes)
            if k <= 0:
                raise RuntimeError("PPO sampled no environment steps.")
            collected += k
            self.num_env_steps += k
            trained0 = self._lifetime(*trained_key)
            learner_results = self.learner_group.update(
                episodes=episodes,
                timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: self.num_env_steps, NUM_MODULE_STEPS_TRAINED_LIFETIME: trained0},
                num_epochs=c.num_epochs, minibatch_size=c.minibatch_size, shuffle_batch_per_epoch=c.shuffle_batch_per_epoch,
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
            # RLlib counts the rows each minibatch step trained: rows / minibatch size = gradient steps.
            self.num_updates += round((self._lifetime(*trained_key) - trained0) / c.minibatch_size)
            self.sync_env_runners()
