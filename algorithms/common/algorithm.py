"""The RLlib config and algorithm every mprl off-policy algorithm subclasses.

One loop for every paradigm, chosen by the phase's `paradigm` (set by the runner):
- offline: each iteration is `updates_per_iteration` learner updates on the dataset;
- online / hybrid: each iteration collects `env_steps_per_iteration` environment steps in
  fragments of `rollout_fragment_length`; after each fragment of k steps the learner runs
  exactly k × `utd` updates from its own data (dataset ∪ replay in hybrid phases), and the new
  weights go to the env runners. Uniform-random actions for `random_steps` and no updates
  before `learning_starts`, unless the phase is warm-started. Exploration is the module's own
  (Gaussian noise for deterministic actors, sampling for Gaussian ones). A warm-started phase
  with `warmup_steps` makes no update for its first N env steps (π0 collects, frozen).
At the end of each iteration the policy is evaluated deterministically (PhaseAlgorithmMixin).

A subclass config names its settings model, module, and `Updates` class, nothing more.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS

from algorithms.common.episodes import episodes_to_transitions
from algorithms.common.phase_algorithm import PhaseAlgorithmMixin, PhaseConfigMixin
from algorithms.common.settings import OffPolicySettings, intervention_values

PARADIGMS = ("offline", "online", "hybrid")


class OffPolicyConfig(PhaseConfigMixin, AlgorithmConfig):
    """Defaults come from `settings` (the algorithm's pydantic model); RLlib's own knobs that
    mprl's learners do not read are not settable through a phase (the model refuses them)."""

    settings: ClassVar[type[OffPolicySettings]] = OffPolicySettings
    module_class: ClassVar[str] = ""  # "module:Class" of the RL module
    updates_class_path: ClassVar[str] = ""  # "module:Class" of the Updates
    #: the phase's paradigm when the runner does not set one
    default_paradigm: ClassVar[str] = "online"
    #: settings (besides `settings`' fields) passed to the module's model_config
    module_settings: ClassVar[tuple[str, ...]] = ("hidden",)

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        return tuple(cls.settings.model_fields)

    @property
    def extra_settings(self) -> tuple[str, ...]:  # PhaseConfigMixin.training() accepts these
        return (*self.setting_names(), "paradigm")

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or self.default_algo_class())
        self.init_phase_settings()
        for name, value in self.settings().model_dump().items():
            setattr(self, name, value)
        self.paradigm = self.default_paradigm
        # Actions leave the module in environment units; RLlib must not rescale them.
        self.normalize_actions = False
        self.clip_actions = False
        # One mprl iteration per RLlib iteration: the budget and evaluation interval decide.
        self.min_time_s_per_iteration = None
        self.min_sample_timesteps_per_iteration = 0
        self.min_train_timesteps_per_iteration = 0

    @classmethod
    def default_algo_class(cls) -> type:
        return OffPolicyAlgorithm

    @property
    def updates_class(self) -> type:
        return _load(self.updates_class_path)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        model_config = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k in self.module_settings if (v := getattr(self, k, None)) is not None}
        return RLModuleSpec(module_class=_load(self.module_class), model_config=model_config)

    def get_default_learner_class(self) -> type:
        from algorithms.common.learner import DataLearner

        return DataLearner

    def settings_values(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.setting_names()}

    def validate(self) -> None:
        super().validate()
        problems = [m for _, m, _ in self.settings.problems(self.settings_values())]
        if self.paradigm not in PARADIGMS:
            problems.append(f"paradigm must be one of {PARADIGMS}, got {self.paradigm!r}")
        if self.paradigm != "online" and not self.dataset:
            problems.append(f"a {self.paradigm} phase learns from a dataset: set `dataset` to a Minari dataset id (see `mprl datasets list`)")
        if self.paradigm == "offline" and self.checkpoint_replay:
            problems.append("an offline phase's data is its dataset, reloaded from disk; `checkpoint_replay` is for online and hybrid phases")
        on = intervention_values(self)
        if self.paradigm == "offline" and on:
            problems.append(f"{', '.join(on)} only apply to warm-started online and hybrid phases; this phase is offline: remove them")
        elif self.paradigm == "online" and "offline_replay" in on:
            problems.append("offline_replay replays the dataset while fine-tuning, and an online phase has none: make it a hybrid phase "
                            "(paradigm hybrid with a dataset) or remove offline_replay")
        elif self.paradigm != "offline" and not problems:
            problems += [m for _, m in self.settings.model_validate(self.settings_values()).intervention_problems(self.paradigm, bool(self.init_checkpoint))]
        if self.num_learners > 1:
            problems.append("mprl's learners keep their data in-process; use num_learners 0 or 1")
        if problems:
            self._value_error("; ".join(problems))


def _load(path: str) -> type:
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class OffPolicyAlgorithm(PhaseAlgorithmMixin, Algorithm):
    @classmethod
    def get_default_config(cls) -> OffPolicyConfig:
        return OffPolicyConfig()

    @property
    def keeps_replay(self) -> bool:
        return self.config.paradigm != "offline"

    def step(self) -> dict[str, Any]:
        results = super().step()
        if self.keeps_replay:
            results["replay_size"] = self.call_learner("replay_size")
        if self.warmup_steps():
            results["warmup_env_steps"] = min(self.num_env_steps, self.warmup_steps())
            results["warmup_done"] = self.num_env_steps >= self.warmup_steps()
        for which in self.config.reset if self.warm_start_interventions.get("reset") else ():
            results[f"reset_{which}"] = True
        return results

    def call_learner(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of the (single) learner, local or remote."""
        results = self.learner_group.foreach_learner(lambda learner: getattr(learner, method)(*args, **kwargs))
        return next(iter(results)).get()

    # -- environment steps ----------------------------------------------------------------
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

    def learning(self) -> bool:
        return self.num_env_steps >= self.config.learning_starts or bool(self.config.init_checkpoint)

    # -- the loops ------------------------------------------------------------------------
    def training_step(self) -> None:
        if self.config.paradigm == "offline":
            self.offline_step()
        else:
            self.online_step()

    def offline_step(self, step: str = "update", **params: Any) -> None:
        c = self.config
        n = self.remaining(c.budget_updates, self.num_updates, c.updates_per_iteration)
        if n:
            self.log_losses([self.call_learner("run_updates", n, step, **params)])
            self.num_updates += n

    def online_step(self) -> None:
        c = self.config
        target = self.remaining(c.budget_env_steps, self.num_env_steps, c.env_steps_per_iteration)
        collected = 0
        losses: list[dict[str, float]] = []
        while collected < target:
            k = self.collect_and_store(min(c.rollout_fragment_length, target - collected))
            collected += k
            if self.learning():
                losses.append(self.fragment_updates(k))
        self.log_losses(losses)

    def collect_and_store(self, num_steps: int) -> int:
        transitions = self.collect_fragment(num_steps)
        self.call_learner("add_transitions", transitions)
        return len(transitions.get("rewards", ()))

    def fragment_updates(self, k: int, step: str = "update", **params: Any) -> dict[str, float]:
        """Exactly k × utd updates after a fragment of k env steps, then new weights to the runners.

        Env steps of the warm-up (`warmup_steps`) buy no update: a fragment that crosses its end
        gets updates for its steps past the end only, so π0 stays frozen while it collects."""
        k -= min(k, max(0, self.warmup_steps() - (self.num_env_steps - k)))
        n = k * self.config.utd
        if n == 0:
            return {}
        losses = self.call_learner("run_updates", n, step, env_steps=self.num_env_steps, **params)
        self.num_updates += n
        self.sync_env_runners()
        return losses

    def warmup_steps(self) -> int:
        """`warmup_steps` of a warm-started phase (without a warm start the spec refuses it)."""
        return self.config.warmup_steps if self.config.init_checkpoint and self.config.paradigm != "offline" else 0

    # -- checkpoints ----------------------------------------------------------------------
    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        if self.config.checkpoint_replay and self.keeps_replay:
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
