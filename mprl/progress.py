"""A Tune callback that prints one line per training iteration: axis, return, rate and ETA.

A trial of a sweep or search names its point (`kappa_start=0.1, kappa_end=0.9 · seed 1`): with
several points running side by side, a trial id alone says nothing about what is being tried."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback

from mprl.axes import BUDGET_KEYS, UNIT_SHORT
from mprl.search import trial_label


def trial_name(config: dict[str, Any]) -> str:
    """'seed 1', or 'kappa=0.3 · seed 1' for a trial of a sweep point (its label, else its settings)."""
    point = trial_label(config)
    seed = f"seed {config.get('seed')}"
    return f"{point} · {seed}" if point else seed


class PhaseProgress(Callback):
    def __init__(self, phase: str, budget_key: str, budget: int, write: Callable[[str], None] = print) -> None:
        self.phase, self.budget_key, self.budget, self.write = phase, budget_key, budget, write
        self.start: dict[str, float] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.start[trial.trial_id] = time.time()
        self.write(f"[{self.phase}] trial {trial.trial_id} started ({trial_name(trial.config)})")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        done = result.get(self.budget_key, 0)
        elapsed = time.time() - self.start.setdefault(trial.trial_id, time.time())
        eta = elapsed / done * (self.budget - done) if done else float("nan")
        score = result.get("normalized_score")
        score_s = f" (norm {score:6.1f})" if score is not None else ""
        unit = UNIT_SHORT["updates" if self.budget_key == BUDGET_KEYS["updates"] else "env_steps"]
        self.write(
            f"[{self.phase}] {trial_name(trial.config)}  {unit} {done:>8,}/{self.budget:,}"
            f"  return {result.get('evaluation_return', float('nan')):9.1f}{score_s}"
            f"  {result.get('updates_per_s', 0):6.0f} upd/s  {result.get('env_steps_per_s', 0):6.0f} steps/s"
            f"  ETA {eta:5.0f}s"
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.write(f"[{self.phase}] trial {trial.trial_id} ({trial_name(trial.config)}) FAILED; see {trial.local_path}/error.txt")
