"""Phase settings and results: what a phase's Tune trials are configured with, and what a
finished phase (a node of the lineage tree) and a run report.

The bottom of the pipeline package: it depends on the spec, the catalogue and the datasets,
never on the scheduler or the driver.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mprl.catalogue import get_algorithm
from mprl.spec import ITERATION_SETTINGS


@dataclass
class PhaseResult:
    phase: str
    algorithm: str
    paradigm: str
    updates: int
    env_steps: int
    evaluation_return: float | None
    normalized_score: float | None
    initial_return: float | None
    checkpoint_at: int  # the checkpoint's position on the phase's axis (updates or env steps)
    checkpoint: str
    trials: int
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint_id: str = ""

@dataclass
class RunResult:
    run_id: str
    run_dir: str
    phases: list[PhaseResult]

    def table(self) -> str:
        head = ["phase", "algorithm", "paradigm", "updates", "env steps", "start return", "eval return", "norm. score", "ckpt at", "selected checkpoint"]
        rows = [
            [p.phase, p.algorithm, p.paradigm, f"{p.updates:,}", f"{p.env_steps:,}", _fmt(p.initial_return), _fmt(p.evaluation_return), _fmt(p.normalized_score), f"{p.checkpoint_at:,}", p.checkpoint_id or p.checkpoint]
            for p in self.phases
        ]
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))
        return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])

def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"

def phase_config(phase: Any, init_checkpoint: str | None, refs: tuple[float, float] | None) -> Any:
    """The phase's RLlib AlgorithmConfig: catalogue defaults ← phase settings ← `config:` overrides."""
    from mprl.datasets import datasets_root
    from mprl.envs import rllib_env

    entry = get_algorithm(phase.algorithm)
    cfg = entry.new_config().environment(rllib_env(phase.env))  # a deployment context: known to every env runner
    settings: dict[str, Any] = {
        "eval_episodes": phase.evaluation.episodes,
        "eval_seed": phase.evaluation.seed,
        "init_checkpoint": init_checkpoint,
        "reference_scores": refs,
        "dataset": phase.dataset_id,
        "paradigm": phase.resolved_paradigm,
        "dataset_root": str(datasets_root()) if phase.dataset_id else None,
        f"budget_{phase.budget_unit}": phase.budget_value,
        ITERATION_SETTINGS[phase.budget_unit]: phase.evaluation.interval,  # one iteration = one evaluation interval
    }
    settings.update(phase.config)
    for key, value in settings.items():
        setattr(cfg, key, value)
    resources = getattr(phase, "resources", None)
    if resources is not None and resources.num_gpus_per_learner:
        cfg.learners(num_gpus_per_learner=resources.num_gpus_per_learner)  # the learner's device (DataLearner puts its data there)
    return cfg

def reference_scores_for(phase: Any) -> tuple[float, float] | None:
    from mprl.datasets import resolve_reference_scores

    return resolve_reference_scores(phase.env, phase.dataset_id)

@contextlib.contextmanager
def quiet_tune() -> Iterator[None]:
    """Our PhaseProgress lines replace Tune's tables and RLlib's start-up warnings."""
    saved = {name: logging.getLogger(name).level for name in ("ray.tune", "ray.rllib", "ray.train")}
    old_output = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    for name in saved:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        if old_output is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = old_output
