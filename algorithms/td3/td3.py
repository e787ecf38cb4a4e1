"""TD3 (Fujimoto et al. 2018) on RLlib's new API stack, built for throughput.

One training iteration collects `env_steps_per_iteration` environment steps in fragments of
`rollout_fragment_length`; after each fragment of k steps the learner runs exactly k × `utd`
updates from its own replay buffer, and the new actor weights go to the env runners.
At the end of each iteration the policy is evaluated deterministically (PhaseAlgorithmMixin).
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS

from algorithms.common.episodes import episodes_to_transitions
from algorithms.common.phase_algorithm import PhaseAlgorithmMixin, PhaseConfigMixin


class TD3Config(PhaseConfigMixin, AlgorithmConfig):
    """Defaults are the TD3 paper's: lr 3e-4, τ 0.005, σ 0.2, c 0.5, delay 2, 256×2, batch 256."""

    extra_settings = (
        "actor_lr", "critic_lr", "tau", "policy_noise", "noise_clip", "policy_delay", "hidden",
        "exploration_noise", "buffer_size", "random_steps", "learning_starts", "utd",
        "env_steps_per_iteration", "updates_per_iteration", "normalize_obs", "checkpoint_replay",
    )

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or TD3)
        self.init_phase_settings()
        self.gamma = 0.99
        self.train_batch_size_per_learner = 256
        self.actor_lr = 3e-4
        self.critic_lr = 3e-4
        self.tau = 0.005
        self.policy_noise = 0.2
        self.noise_clip = 0.5
        self.policy_delay = 2
        self.hidden = [256, 256]
        self.exploration_noise = 0.1
        self.buffer_size = 1_000_000
        self.random_steps = 25_000  # uniform-random actions first (TD3's start_timesteps)
        self.learning_starts = 25_000
        self.utd = 1  # gradient updates per environment step (OPT uses 5 on MuJoCo)
        self.rollout_fragment_length = 50
        self.env_steps_per_iteration = 1000
        self.updates_per_iteration = 1000
        self.normalize_obs = False
        # The online replay buffer in every checkpoint, so a retried or resumed trial continues
        # with its data (RLlib's `store_buffer_in_checkpoints`); off by default: it costs
        # 4 × (2·obs + act + 2) bytes per stored transition in each checkpoint.
        self.checkpoint_replay = False
        # Actions leave the module in environment units; RLlib must not rescale them.
        self.normalize_actions = False
        self.clip_actions = False
        self.num_env_runners = 0
        self.min_time_s_per_iteration = None
        self.min_sample_timesteps_per_iteration = 0
        self.min_train_timesteps_per_iteration = 0

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from algorithms.td3.td3_module import TD3RLModule

        return RLModuleSpec(module_class=TD3RLModule, model_config={"hidden": list(self.hidden), "exploration_noise": self.exploration_noise})

    def get_default_learner_class(self) -> type:
        from algorithms.td3.td3_learner import TD3Learner

        return TD3Learner

    def validate(self) -> None:
        super().validate()
        for name in ("utd", "policy_delay", "rollout_fragment_length", "env_steps_per_iteration", "updates_per_iteration"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                self._value_error(f"`{name}` must be a positive integer, got {v!r}.")
        if self.num_learners > 1:
            self._value_error("mprl's TD3 learners keep their data in-process; use num_learners 0 or 1.")


class TD3(PhaseAlgorithmMixin, Algorithm):
    keeps_replay = True  # an online replay buffer (reported as `replay_size`)

    def step(self) -> dict[str, Any]:
        results = super().step()
        if self.keeps_replay:
            results["replay_size"] = self.call_learner("replay_size")
        return results
    @classmethod
    def get_default_config(cls) -> TD3Config:
        return TD3Config()

    def call_learner(self, method: str, *args: Any) -> Any:
        """Call a method of the (single) learner, local or remote."""
        results = self.learner_group.foreach_learner(lambda learner: getattr(learner, method)(*args))
        return next(iter(results)).get()

    def sample(self, num_steps: int, random_actions: bool) -> list[Any]:
        group = self.env_runner_group
        if group.num_remote_env_runners() == 0:
            episodes = self.env_runner.sample(num_timesteps=num_steps, random_actions=random_actions)
            self.metrics.aggregate([self.env_runner.get_metrics()], key=ENV_RUNNER_RESULTS)
            return episodes
        per_runner = -(-num_steps // group.num_remote_env_runners())
        out = group.foreach_env_runner(
            lambda r: (r.sample(num_timesteps=per_runner, random_actions=random_actions), r.get_metrics()),
            local_env_runner=False,
        )
        self.metrics.aggregate([m for _, m in out], key=ENV_RUNNER_RESULTS)
        return [ep for eps, _ in out for ep in eps]

    def collect_fragment(self, num_steps: int) -> dict[str, Any]:
        """Sample one fragment (uniform-random actions during warm-up) as flat transitions."""
        c = self.config
        random = self.num_env_steps < c.random_steps and not c.init_checkpoint
        transitions = episodes_to_transitions(self.sample(num_steps, random))
        self.num_env_steps += len(transitions.get("rewards", ()))
        return transitions

    def training_step(self) -> None:
        c = self.config
        target = self.remaining(c.budget_env_steps, self.num_env_steps, c.env_steps_per_iteration)
        collected = 0
        losses: list[dict[str, float]] = []
        while collected < target:
            transitions = self.collect_fragment(min(c.rollout_fragment_length, target - collected))
            k = len(transitions.get("rewards", ()))
            collected += k
            self.call_learner("add_transitions", transitions)
            if self.num_env_steps >= c.learning_starts or c.init_checkpoint:
                losses.append(self.call_learner("run_updates", k * c.utd))
                self.num_updates += k * c.utd
                self.sync_env_runners()
        self.log_losses(losses)

    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        if self.config.checkpoint_replay:
            state["replay"] = self.call_learner("replay_state")
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "replay" in state:
            self.call_learner("load_replay_state", state["replay"])

    def log_losses(self, losses: list[dict[str, float]]) -> None:
        for key in sorted({k for d in losses for k in d}):
            vals = [d[key] for d in losses if key in d]
            self.metrics.log_value(("learner_stats", key), sum(vals) / len(vals), reduce="mean", window=1)
