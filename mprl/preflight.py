"""Checks across a pipeline's inputs that no single field's validation can make, run before
Ray starts or any folder is written (`mprl.pipeline.driver.validate_inputs`).

Today: an offline phase's environment must have its dataset's spaces. The dataset's metadata
knows the env it was recorded in; a phase on an env of other spaces would otherwise fail tens
of seconds into the run with a tensor-shape traceback and leave a failed run folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mprl.errors import MprlError


def _shape(space: Any) -> tuple[int, ...] | None:
    shape = getattr(space, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else None


def env_spaces(env_id: str) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """(observation shape, action shape) of a registered environment."""
    from mprl.envs import make_env

    env = make_env(env_id)
    try:
        return _shape(env.observation_space), _shape(env.action_space)
    finally:
        env.close()


def check_phase_spaces(spec: Any, skip: Sequence[str] = ()) -> None:
    """Every phase with a dataset: its env's observation and action shapes equal the dataset's
    (raises one MprlError naming the phase, both envs and both shapes)."""
    from mprl.datasets import open_dataset

    problems = []
    for phase in spec.phases:
        if not phase.dataset_id or phase.name in skip:
            continue
        ds = open_dataset(phase.dataset_id)
        ds_obs, ds_act = _shape(ds.observation_space), _shape(ds.action_space)
        env_obs, env_act = env_spaces(phase.env)
        if (ds_obs, ds_act) != (env_obs, env_act):
            recorded = ds.env_spec.id if ds.env_spec is not None else "an unknown env"
            problems.append(
                f"phase '{phase.name}': env {phase.env} has observations {list(env_obs or [])} and actions {list(env_act or [])}, "
                f"but dataset {phase.dataset_id} (recorded in {recorded}) has observations {list(ds_obs or [])} and actions {list(ds_act or [])}"
            )
    if problems:
        raise MprlError("The environment and the dataset do not fit: " + "; ".join(problems)
                        + ". Use the dataset's environment (or a variant with the same spaces), or a dataset recorded in this one.")
