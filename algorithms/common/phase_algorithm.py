"""What every mprl phase algorithm adds to an RLlib Algorithm, whatever its learner.

- counters on both axes (gradient updates, environment steps) that survive checkpoints;
- a budget in either unit, reported as `budget_done` for Tune's stopper;
- deterministic evaluation with per-episode seeds after each iteration, and the normalised
  score from the phase's reference returns (reused, not re-run, while the policy's weights
  are bit-identical to those last evaluated: the result is the same by construction);
- warm start from another phase's checkpoint, with an evaluation before the first update.

Subclasses increase `num_updates` / `num_env_steps` in their `training_step`.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from ray.rllib.algorithms.algorithm_config import NotProvided

from algorithms.common.checkpoints import read_module_state, use_dataset_root

# The AlgorithmConfig attributes PhaseConfigMixin adds, with their defaults.
PHASE_SETTINGS: dict[str, Any] = {
    "eval_episodes": 10,
    "eval_seed": 10_000,
    "budget_updates": None,
    "budget_env_steps": None,
    "init_checkpoint": None,
    # `init_from: {phase: P, top_k: K, as: ensemble}`: one checkpoint per ensemble member, in
    # member order (init_checkpoint is the first, for what asks whether the phase is warm-started).
    "init_checkpoints": None,
    "reference_scores": None,
    "dataset": None,
    # The Minari folder that holds `dataset`, fixed when the phase is configured, so that
    # learner processes find it whatever their own environment says.
    "dataset_root": None,
    # Small MLPs: one intra-op thread avoids contention with env stepping and other trials.
    "torch_num_threads": 1,
    # Warm start (mprl.transfer): target copies from the source's ("copy") or re-synced from
    # the transferred online networks ("sync"); optimiser state only if asked; a constant
    # log-std for Gaussian heads made from a deterministic actor (None: fresh init); layers
    # whose activations differ are left initialised unless allowed.
    "transfer_targets": "copy",
    "transfer_optimizer": False,
    "transfer_log_std_init": None,
    "transfer_allow_activation_mismatch": False,
}


def policy_tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    """What a deterministic evaluation of `module` depends on: our modules act with
    actor(normalizer(s)); for any other module, its whole state."""
    if hasattr(module, "act") and all(isinstance(getattr(module, n, None), torch.nn.Module) for n in ("actor", "normalizer")):
        return [*module.normalizer.state_dict().values(), *module.actor.state_dict().values()]
    return list(module.state_dict().values())


class PhaseConfigMixin:
    """Adds PHASE_SETTINGS (plus a subclass's `extra_settings`) to an AlgorithmConfig."""

    extra_settings: tuple[str, ...] = ()

    def init_phase_settings(self) -> None:
        for key, value in PHASE_SETTINGS.items():
            setattr(self, key, value)

    def update_from_dict(self, config_dict: dict[str, Any]) -> Any:
        """Tune hands each trial its sweep point under `sweep_point`; its settings win."""
        point = config_dict.get("sweep_point") or {}
        return super().update_from_dict({**config_dict, **{k: v for k, v in point.items() if k != "label"}})

    def training(self, **kwargs: Any) -> Any:
        """RLlib's `training(...)` plus the phase settings and the algorithm's own."""
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in PHASE_SETTINGS or k in self.extra_settings}
        super().training(**kwargs)
        for k, v in own.items():
            if v is not NotProvided:
                setattr(self, k, v)
        return self


class PhaseAlgorithmMixin:
    """Mix in before an RLlib Algorithm class: `class TD3(PhaseAlgorithmMixin, Algorithm)`."""

    def setup(self, config: Any) -> None:
        if config.torch_num_threads:
            torch.set_num_threads(config.torch_num_threads)
        super().setup(config)
        self.num_updates = 0
        self.num_env_steps = 0
        self.last_eval: dict[str, float] = {}
        self.initial_eval: dict[str, float] = {}
        self.transfer_report: dict[str, Any] | None = None
        self.warm_start_interventions: dict[str, Any] = {}
        self.reference_scores = self.config.reference_scores or self.lookup_reference_scores()
        if self.config.init_checkpoints:
            self.warm_start_ensemble(list(self.config.init_checkpoints))
            if self.config.eval_episodes:
                self.initial_eval = self.evaluate_current_policy()
            self.apply_warm_start_interventions()
        elif self.config.init_checkpoint:
            self.warm_start(read_module_state(self.config.init_checkpoint))
            if self.config.eval_episodes:
                self.initial_eval = self.evaluate_current_policy()
            self.apply_warm_start_interventions()

    def warm_start(self, state: dict[str, Any]) -> None:
        """Carry a source module's weights into every learner by role (mprl.transfer), then to the env runners.

        The compatibility checker plans the transfer, the loader applies it; an impossible
        transfer raises TransferError (with the report) before any weight changes.
        """
        from mprl.errors import TransferError
        from mprl.transfer import Snapshot, TransferOptions, snapshot_from_checkpoint, transfer_into_learner

        checkpoint = self.config.init_checkpoint
        source = snapshot_from_checkpoint(checkpoint, state) if checkpoint else Snapshot(None, state)
        options = TransferOptions.from_config(self.config)
        results = self.learner_group.foreach_learner(lambda learner: transfer_into_learner(learner, source, options, checkpoint))
        self.transfer_report = next(iter(results)).get()
        if not self.transfer_report["possible"]:
            raise TransferError.from_report(self.transfer_report)
        self.sync_env_runners()

    def warm_start_ensemble(self, checkpoints: list[str]) -> None:
        """Member k of an ensemble module (Off2On) from checkpoint k, each by role (mprl.transfer);
        the report lists every member's. Incompatible members raise TransferError before training."""
        from mprl.errors import TransferError
        from mprl.transfer import TransferOptions, snapshot_from_checkpoint
        from mprl.transfer.loader import transfer_members_into_learner

        sources = [snapshot_from_checkpoint(c) for c in checkpoints]
        options = TransferOptions.from_config(self.config)
        results = self.learner_group.foreach_learner(lambda learner: transfer_members_into_learner(learner, sources, options, checkpoints))
        self.transfer_report = next(iter(results)).get()
        if not self.transfer_report["possible"]:
            raise TransferError.from_report(self.transfer_report)
        self.sync_env_runners()

    def apply_warm_start_interventions(self) -> None:
        """The interventions that act on the warm-started networks (freeze μ0 for
        `regularize_to_init`, `reset`), after π0's evaluation: `initial_evaluation_*` is π0's."""
        hooks = self.learner_group.foreach_learner(lambda learner: learner.on_warm_start() if hasattr(learner, "on_warm_start") else {})
        self.warm_start_interventions = next(iter(hooks)).get()
        if self.warm_start_interventions.get("reset"):
            self.sync_env_runners()

    def sync_env_runners(self) -> None:
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)

    def lookup_reference_scores(self) -> tuple[float, float] | None:
        from mprl.datasets import resolve_reference_scores

        use_dataset_root(self.config)
        return resolve_reference_scores(self.config.env, self.config.dataset)

    def evaluate_policy(self) -> dict[str, float]:
        from mprl.envs import normalized_score
        from mprl.evaluation import evaluate_policy, torch_policy

        c = self.config
        policy = torch_policy(self.env_runner.module, normalize_actions=c.normalize_actions, clip_actions=c.clip_actions)
        res = evaluate_policy(policy, c.env, c.eval_episodes, c.eval_seed)
        out = {"evaluation_return": res.mean, "evaluation_return_std": res.std, "evaluation_length": float(sum(res.lengths) / len(res.lengths))}
        score = normalized_score(res.mean, refs=self.reference_scores)
        if score is not None:
            out["normalized_score"] = score
        return out

    def evaluate_current_policy(self) -> dict[str, float]:
        """`evaluate_policy()`, or its last result while the env runner's policy is bit-identical
        to the one evaluated then (e.g. OPT's collect and pre-train stages, where π is frozen):
        the evaluation is deterministic with fixed episode seeds, so it would return the same."""
        tensors = policy_tensors(self.env_runner.module)
        last = getattr(self, "_evaluated_policy", None)
        self.eval_reused = last is not None and len(last[0]) == len(tensors) and all(torch.equal(a, b) for a, b in zip(last[0], tensors))
        if self.eval_reused:
            return last[1]
        result = self.evaluate_policy()
        self._evaluated_policy = ([t.detach().clone() for t in tensors], result)
        return result

    @staticmethod
    def remaining(budget: int | None, done: int, per_iteration: int) -> int:
        """Work for this iteration: `per_iteration`, cut so the budget is met exactly."""
        return per_iteration if budget is None else max(0, min(per_iteration, budget - done))

    def budget_done(self) -> bool:
        c = self.config
        if c.budget_updates is not None and self.num_updates >= c.budget_updates:
            return True
        return c.budget_env_steps is not None and self.num_env_steps >= c.budget_env_steps

    def step(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        updates0, steps0 = self.num_updates, self.num_env_steps
        results = super().step()
        train_s = time.perf_counter() - t0
        if self.config.eval_episodes:
            self.sync_env_runners()
            self.last_eval = self.evaluate_current_policy()
            results["evaluation_reused"] = self.eval_reused
        results.update(self.last_eval)
        results.update({f"initial_{k}": v for k, v in self.initial_eval.items()})
        results["num_updates_lifetime"] = self.num_updates
        results["num_env_steps_lifetime"] = self.num_env_steps
        results["updates_per_s"] = (self.num_updates - updates0) / train_s
        results["env_steps_per_s"] = (self.num_env_steps - steps0) / train_s
        results["budget_done"] = self.budget_done()
        return results

    # Our counters travel with RLlib's checkpoint state.
    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state["mprl_counters"] = {"num_updates": self.num_updates, "num_env_steps": self.num_env_steps, "last_eval": self.last_eval, "initial_eval": self.initial_eval}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        counters = state.get("mprl_counters")
        if counters:
            self.num_updates = counters["num_updates"]
            self.num_env_steps = counters["num_env_steps"]
            self.last_eval = counters["last_eval"]
            self.initial_eval = counters["initial_eval"]
