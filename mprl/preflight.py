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


# ---------------------------------------------------------------- cluster resources

#: the resources a trial's placement request is checked for (others are the cluster's business)
CHECKED_RESOURCES = ("GPU", "CPU")


def trial_request(cfg: Any, sweep: Any = None) -> dict[str, float]:
    """CPUs and GPUs one trial of a phase reserves: RLlib's own placement-group request for
    the phase's config (`Algorithm.default_resource_request`: the trial process with a local
    learner's GPUs, env runners, remote learners), the largest over a list of sweep points."""
    base = cfg.to_dict()
    points = [p for p in sweep if isinstance(p, dict)] if isinstance(sweep, list) and sweep else [None]
    need: dict[str, float] = {}
    for point in points:
        config = {**base, "sweep_point": point} if point else base
        try:
            request = cfg.algo_class.default_resource_request(config).required_resources
        except Exception:  # noqa: BLE001 -- a config RLlib cannot validate yet (a dataset still to build): the plain count
            values = {**base, **(point or {})}
            learners = int(values.get("num_learners") or 0)
            request = {"GPU": float(values.get("num_gpus_per_learner") or 0) * max(learners, 1),
                       "CPU": 1.0 + learners + float(values.get("num_env_runners") or 0)}
        for key in CHECKED_RESOURCES:
            need[key] = max(need.get(key, 0.0), float(request.get(key, 0.0)))
    return need


def check_phase_resources(phase: Any, cfg: Any = None, available: dict[str, float] | None = None) -> None:
    """One MprlError, before Tune starts, when a trial of `phase` asks for more GPUs or CPUs
    than the Ray cluster has: Tune would otherwise wait forever (its warning is silenced by
    quiet_tune). `available` defaults to `ray.cluster_resources()` (Ray must be initialised)."""
    if available is None:
        import ray

        available = ray.cluster_resources()
    if cfg is None:
        from mprl.pipeline.phases import phase_config

        cfg = phase_config(phase, None, None)
    need = trial_request(cfg, phase.sweep)
    short = [k for k in CHECKED_RESOURCES if need[k] > float(available.get(k, 0.0)) + 1e-9]
    if not short:
        return
    has = ", ".join(f"{float(available.get(k, 0.0)):g} {k}" for k in CHECKED_RESOURCES)
    asks = ", ".join(f"{need[k]:g} {k}" for k in CHECKED_RESOURCES)
    gpus = getattr(getattr(phase, "resources", None), "num_gpus_per_learner", 0.0)
    learners = int(getattr(cfg, "num_learners", 0) or 0)
    why = []
    if "GPU" in short:
        where = (f"× {learners} learner(s)" if learners else "for the learner in the trial's process (num_learners 0)")
        why.append(f"resources.num_gpus_per_learner: {gpus:g} {where}")
    if "CPU" in short:
        runners = int(getattr(cfg, "num_env_runners", 0) or 0)
        why.append(f"1 CPU for the trial plus {runners} env runner(s) (config.num_env_runners)")
    fixes = []
    if "GPU" in short:
        fixes.append("write resources: {num_gpus_per_learner: 0} to train on CPU")
    if "CPU" in short:
        fixes.append("lower config.num_env_runners")
    fixes.append("run on a cluster that has them (ray.address / RAY_ADDRESS)")
    fixes.append("or, on a cluster that autoscales, set ray.check_resources: false")
    fix = f"{'; '.join(fixes[:-1])}; {fixes[-1]}"
    raise MprlError(
        f"Phase '{phase.name}': each trial asks Ray for {asks} ({'; '.join(why)}), but the Ray cluster has {has} in all: "
        f"Tune would wait for them forever. {fix[0].upper()}{fix[1:]}.")


def check_cluster_resources(spec: Any) -> None:
    """`check_phase_resources` for every phase of a pipeline (unless `ray.check_resources` is
    false), so a later phase's impossible request fails before the first phase starts."""
    if not getattr(spec.ray, "check_resources", True):
        return
    import ray

    available = ray.cluster_resources()
    for phase in spec.phases:
        check_phase_resources(phase, available=available)
