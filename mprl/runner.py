"""Run a pipeline: one Ray Tune run per phase, each next phase warm-started from a checkpoint.

This is the in-driver runner of the foundation; the phase scheduler actor builds on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mprl.catalogue import get_algorithm
from mprl.errors import DatasetNotFound, MprlError
from mprl.preflight import check_phase_spaces
from mprl.spec import ITERATION_SETTINGS, sweep_label
from mprl.storage import check_writable, dirname, is_uri, join



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
        line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
        return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


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


def init_ray(address: str | None, num_cpus: int | None) -> None:
    """Embedded local Ray unless an address is given (spec, or RAY_ADDRESS as `ray job submit` sets)."""
    import ray

    from mprl.quiet import quiet_ray_startup

    if ray.is_initialized():
        return
    quiet_ray_startup()
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def ensure_dataset(phase: Any, write: Callable[[str], None]) -> None:
    from mprl.datasets import build_dataset, open_dataset

    if phase.dataset_id is None:
        return
    try:
        open_dataset(phase.dataset_id)
        return
    except DatasetNotFound:
        if phase.dataset_build is None:
            raise
    b = phase.dataset_build
    write(f"[{phase.name}] building dataset {phase.dataset_id} ({b.quality}, {b.size:,} transitions)")
    build_dataset(phase.env, b.quality, size=b.size, budget=b.budget, seed=b.seed, dataset_id=phase.dataset_id, progress=write)


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
    return cfg


def reference_scores_for(phase: Any) -> tuple[float, float] | None:
    from mprl.datasets import resolve_reference_scores

    return resolve_reference_scores(phase.env, phase.dataset_id)


# Stage boundaries an algorithm reports (env step at which it began), drawn on sweep curves.
STAGE_MARKERS = {"pretrain_start_env_steps": "online pre-training", "finetune_start_env_steps": "fine-tuning"}


def write_sweep_report(results: Any, phase: Any, metric: str, axis: str, out_dir: Path, write: Callable[[str], None]) -> dict[str, str]:
    """Final `metric` per sweep point across seeds: mean, 95% CI, IQM → CSV, Markdown, PNG,
    plus the learning curves per point on the phase's axis."""
    from mprl.analysis import plot_curves, summarize, to_markdown, write_report

    finals: dict[str, list[float]] = {}
    curves: dict[str, list[list[tuple[float, float]]]] = {}
    boundaries: dict[str, set[float]] = {}
    for r in results:
        label = r.config["sweep_point"]["label"]
        df = r.metrics_dataframe
        if df is None or metric not in df or df[metric].dropna().empty:
            continue
        finals.setdefault(label, []).append(float(df[metric].dropna().iloc[-1]))
        curves.setdefault(label, []).append(list(zip(df[axis].astype(float), df[metric].astype(float))))
        for key, name in STAGE_MARKERS.items():
            if key in df and len(points := df[key].dropna()) and phase.budget_unit == "env_steps":
                boundaries.setdefault(name, set()).add(float(points.iloc[-1]))
    order = [sweep_label(p) for p in phase.sweep]
    rows = summarize({label: finals[label] for label in order if label in finals})
    title = f"{phase.name}: final {metric} per sweep point ({len(phase.tune.seeds)} seed(s))"
    paths = write_report(rows, out_dir, "sweep", title)
    plot_curves(curves, out_dir / "sweep_curves.png", xlabel=axis, ylabel=metric, title=f"{phase.name}: {metric} by sweep point",
                boundaries=[(xs.pop(), name) for name, xs in boundaries.items() if len(xs) == 1])  # shared ones only
    write(to_markdown(rows, title=title))
    write(f"[{phase.name}] sweep table: {paths['md']}, {paths['csv']}, {paths['png']}; curves: {out_dir / 'sweep_curves.png'}")
    return paths


def write_branch_report(store: Any, phase: Any, node_ids: list[str], out_dir: Path, write: Callable[[str], None]) -> dict[str, str]:
    """One row per branch of a phase (e.g. one per transition point): the final metric of each
    trial, across seeds → CSV, Markdown, PNG; the table compares the branches."""
    from mprl.analysis import summarize, to_markdown, write_report

    last: dict[str, list[dict[str, Any]]] = {}  # each trial's last row, per branch label
    for node_id in node_ids:
        node = store.node(node_id)
        label = f"{node_id} ({node['branch']})" if node and node["branch"] else node_id
        by_trial = {m["trial_id"]: m for m in store.metrics(node_id=node_id)}  # ordered by iteration: the last stays
        last[label] = list(by_trial.values())
    rows_all = [m for ms in last.values() for m in ms]
    metric = "normalized_score" if all(m["normalized_score"] is not None for m in rows_all) else "evaluation_return"
    finals = {label: [float(m[metric]) for m in ms if m[metric] is not None] for label, ms in last.items()}
    rows = summarize({k: v for k, v in finals.items() if v})
    title = f"{phase.name}: final {metric} per branch ({len(phase.tune.seeds)} seed(s) each)"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = write_report(rows, out_dir, "branches", title)
    write(to_markdown(rows, title=title))
    write(f"[{phase.name}] branch table: {paths['md']}, {paths['csv']}, {paths['png']}")
    return paths


def new_run_id(name: str) -> str:
    """Unique even for two runs of one pipeline started in the same second."""
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"


def validate_inputs(spec: Any, write: Callable[[str], None]) -> None:
    """Bad checkpoints and missing datasets fail before Ray starts or any folder is written."""
    from algorithms.common.checkpoints import read_module_state

    if spec.storage_is_uri:
        check_writable(spec.storage_path)  # a missing bucket or credentials fail here, not in phase 1
    elif os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") and not os.path.isabs(spec.storage_path):
        raise MprlError(f"storage_path {spec.storage_path!r} is relative: in a Ray Job it would land in the job's temporary copy of the working directory, deleted with the session. Pass an absolute path (`--storage-path /shared/mprl_results`).")
    else:
        folder = Path(spec.resolved_storage_path)
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise MprlError(f"storage_path {spec.storage_path!r} cannot hold run folders: {existing} is not a writable folder. Pass another --storage-path.")
    for phase in spec.phases:
        if phase.init_checkpoint_path:
            read_module_state(phase.init_checkpoint_path)
    for phase in spec.phases:
        ensure_dataset(phase, write)
    check_phase_spaces(spec)


def _actor_env() -> dict[str, str]:
    """What the scheduler and its trials must see of the driver's environment."""
    from mprl.datasets import datasets_root

    env = {"MINARI_DATASETS_PATH": str(datasets_root()), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    if "TUNE_GLOBAL_CHECKPOINT_S" in os.environ:  # how often Tune saves its experiment state (tests set it)
        env["TUNE_GLOBAL_CHECKPOINT_S"] = os.environ["TUNE_GLOBAL_CHECKPOINT_S"]
    return env


def start_scheduler(spec: Any, run_id: str, run_dir: str) -> Any:
    import ray

    from mprl.scheduler import NAMESPACE, Scheduler, actor_name

    actor_cls = ray.remote(Scheduler)
    return actor_cls.options(
        name=actor_name(run_id), namespace=NAMESPACE, lifetime="detached", max_concurrency=4, num_cpus=0,
        runtime_env={"env_vars": _actor_env()}, max_restarts=0,
    ).remote(spec.to_dict(), spec.source, run_id, run_dir)


def find_scheduler(run_id: str) -> Any | None:
    """The live scheduler actor of a run, if any."""
    import ray

    from mprl.scheduler import NAMESPACE, actor_name

    try:
        return ray.get_actor(actor_name(run_id), namespace=NAMESPACE)
    except ValueError:
        return None


class _Stop(Exception):
    pass


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """`ray job stop` sends SIGTERM, a user Ctrl-C: both only set a flag that the follow loop
    checks (raising inside Ray's blocking calls would corrupt them)."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    old = {sig: signal.signal(sig, lambda *_: requested.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield requested
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def attach(actor: Any, run_id: str, run_dir: str, storage_path: str, write: Callable[[str], None], cluster_outlives: bool = False) -> RunResult:
    """Follow a scheduler's progress lines until the run ends; Ctrl-C or SIGTERM stops the run.

    Videos still rendering at the end are left to finish in the background: on a cluster that
    outlives this driver the scheduler actor keeps rendering and recording them; with an
    embedded local Ray (which ends with this process) a detached process renders them."""
    import ray

    ref = actor.run.remote()
    offset = 0
    try:
        with _stop_signals() as stop_requested:
            while True:
                ready, _ = ray.wait([ref], timeout=0.5)
                lines, offset = ray.get(actor.poll.remote(offset))
                for line in lines:
                    write(line)
                if ready:
                    break
                if stop_requested.is_set():
                    raise _Stop
            summary = ray.get(ref)
    except _Stop:
        write(f"stopping run {run_id} ...")
        with contextlib.suppress(Exception):
            ray.get(actor.stop.remote(), timeout=30)
        ray.kill(actor)
        raise MprlError(f"run {run_id} stopped; continue it with `mprl resume {run_id} --storage-path {storage_path}`") from None
    except ray.exceptions.RayActorError as e:
        if e.actor_init_failed:  # e.g. the storage could not be written: say why, there is nothing to resume
            cause = (e.error_msg or "").strip().splitlines()
            raise MprlError(f"the phase scheduler of run {run_id} could not start: {cause[-1] if cause else e}") from None
        raise MprlError(f"the phase scheduler of run {run_id} died; continue the run with `mprl resume {run_id} --storage-path {storage_path}`") from None
    exception = summary.pop("exception", None)
    pending = summary.pop("videos_pending", None) or []
    if pending and cluster_outlives:
        actor.finish_videos.remote()  # it ends itself when they are recorded
        write(f"{len(pending)} video(s) render in the background on the cluster → {join(run_dir, 'videos')}/ (in the lineage when done: `mprl lineage show {run_id}`)")
    else:
        with contextlib.suppress(Exception):
            ray.kill(actor)  # a finished scheduler holds nothing worth keeping
        if pending:
            from mprl.video import render_in_background

            log = render_in_background(run_dir, run_id, pending)
            write(f"{len(pending)} video(s) render in the background → {join(run_dir, 'videos')}/ (in the lineage when done: `mprl lineage show {run_id}`; log {log})")
    if summary["status"] != "succeeded":
        if isinstance(exception, BaseException):
            raise exception
        raise MprlError(summary.get("error") or f"run {run_id} failed")
    return RunResult(run_id, str(run_dir), [PhaseResult(**{k: v for k, v in p.items() if k in PhaseResult.__dataclass_fields__}) for p in summary["phases"]])


def run_pipeline(spec: Any, write: Callable[[str], None] = print, detach: bool = False) -> RunResult | None:
    """Validate, then hand the run to a new phase scheduler actor and follow it to the end
    (or, with `detach`, leave it running on the cluster and return None)."""
    import ray

    if detach and not (spec.ray.address or os.environ.get("RAY_ADDRESS")):
        raise MprlError("--detach needs a Ray cluster that outlives this command (set RAY_ADDRESS or ray.address); an embedded local Ray stops with it")
    validate_inputs(spec, write)
    init_ray(spec.ray.address, spec.ray.num_cpus)
    run_id = new_run_id(spec.name)
    storage_path = spec.resolved_storage_path
    run_dir = join(storage_path, run_id)
    write(f"run {run_id}: {len(spec.phases)} phase(s) → {run_dir}")
    actor = start_scheduler(spec, run_id, run_dir)
    if detach:
        ray.get(actor.start.remote())
        write(f"run {run_id} continues on the cluster; follow it with `mprl resume {run_id} --storage-path {storage_path}`")
        return None
    return attach(actor, run_id, run_dir, storage_path, write, cluster_outlives=_cluster_outlives(spec))


def _cluster_outlives(spec: Any) -> bool:
    """Whether the Ray cluster is one this driver connected to (it outlives the driver)."""
    return bool(spec.ray.address or os.environ.get("RAY_ADDRESS"))


def resume_run(run: str, storage_path: str | None = None, write: Callable[[str], None] = print) -> RunResult | None:
    """Continue a stopped or crashed run from its lineage and Tune's experiment state; attach
    to its scheduler instead if that is still alive. A run that succeeded has nothing to
    resume: None, with nothing started."""
    from mprl.lineage import find_run, open_lineage
    from mprl.spec import parse_pipeline

    location = find_run(run, storage_path)
    run_dir = location if is_uri(location) else str(Path(location).resolve())
    with open_lineage(run_dir) as store:
        record = store.run()
    spec = parse_pipeline(json.loads(record["spec_json"]), source=f"{run_dir}/pipeline.json")
    run_id = record["run_id"]
    if record["status"] == "succeeded":
        write(f"run {run_id} already succeeded; nothing to resume (`mprl lineage show {run_id}` shows it)")
        return None
    validate_inputs(spec, write)
    init_ray(spec.ray.address, spec.ray.num_cpus)
    actor = find_scheduler(run_id)
    if actor is not None:
        write(f"run {run_id}: its scheduler is alive; following it")
    else:
        write(f"run {run_id}: resuming ({record['status']}) → {run_dir}")
        actor = start_scheduler(spec, run_id, run_dir)
    return attach(actor, run_id, run_dir, dirname(run_dir), write, cluster_outlives=_cluster_outlives(spec))
