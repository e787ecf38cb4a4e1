"""The driver: what `mprl run` and `mprl resume` do in the user's process.

It validates a pipeline's inputs before Ray starts or a folder is written, starts the run's
phase scheduler actor (`mprl.pipeline.scheduler`), follows its progress lines until the run
ends, turns Ctrl-C / SIGTERM into a consistent stop, and resumes stopped or crashed runs.
The top of the pipeline package: nothing below imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mprl.errors import DatasetNotFound, MprlError
from mprl.lineage.writer import SCHEDULER_NAMESPACE, scheduler_actor_name
from mprl.pipeline.phases import PhaseResult, RunResult
from mprl.preflight import check_cluster_resources, check_phase_spaces
from mprl.storage import check_writable, dirname, is_uri, join


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

def ensure_dataset(phase: Any, write: Callable[[str], None], build: bool = True) -> bool:
    """The phase's dataset exists, or is built from its `build:` settings (with `build` False,
    only said): whether it exists now."""
    from mprl.datasets import build_dataset, open_dataset

    if phase.dataset_id is None:
        return True
    try:
        open_dataset(phase.dataset_id)
        return True
    except DatasetNotFound:
        if phase.dataset_build is None:
            raise
    b = phase.dataset_build
    if not build:
        write(f"[{phase.name}] dataset {phase.dataset_id} is not built yet: the run builds it first ({b.quality}, {b.size:,} transitions)")
        return False
    write(f"[{phase.name}] building dataset {phase.dataset_id} ({b.quality}, {b.size:,} transitions)")
    build_dataset(phase.env, b.quality, size=b.size, budget=b.budget, seed=b.seed, dataset_id=phase.dataset_id, progress=write,
                  target_score=b.target_score, target_return=b.target_return, strict=b.strict)

def new_run_id(name: str) -> str:
    """Unique even for two runs of one pipeline started in the same second."""
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"

def resolve_checkpoint_ids(spec: Any, phase: Any) -> None:
    """`init_from: {checkpoint: ck-…}` names a checkpoint of a run under the spec's storage path:
    it becomes that checkpoint's folder (the recorded spec then says where the weights came from)."""
    from mprl.lineage.store import find_checkpoint, is_checkpoint_id

    ref = phase.init_from.checkpoint
    if is_checkpoint_id(Path(ref).name) and not Path(ref).exists():
        ref = Path(ref).name  # `~`-expanded or made relative by the YAML's folder: the id is its last part
        path, _, _ = find_checkpoint(ref, spec.resolved_storage_path)
        phase.init_from.checkpoint = path

def validate_inputs(spec: Any, write: Callable[[str], None], build: bool = True) -> None:
    """Bad checkpoints and missing datasets fail before Ray starts or any folder is written
    (`build` False: a dataset the run would build is only reported, as `mprl validate` does)."""
    from algorithms.common.checkpoints import read_module_state
    from mprl.tracking import check_tracking

    check_tracking(spec)  # a tracker's missing package fails here, before anything starts
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
            resolve_checkpoint_ids(spec, phase)
            read_module_state(phase.init_checkpoint_path)
    unbuilt: list[str] = []
    pending: set[str] = set()  # `build` False: an earlier phase's dataset to be built, which a later phase may name by id
    for phase in spec.phases:
        if (not build and phase.dataset_id in pending) or not ensure_dataset(phase, write, build):
            pending.add(phase.dataset_id)
            unbuilt.append(phase.name)
    check_phase_spaces(spec, skip=unbuilt)

def _actor_env() -> dict[str, str]:
    """What the scheduler and its trials must see of the driver's environment."""
    from mprl.datasets import datasets_root

    env = {"MINARI_DATASETS_PATH": str(datasets_root()), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    if "TUNE_GLOBAL_CHECKPOINT_S" in os.environ:  # how often Tune saves its experiment state (tests set it)
        env["TUNE_GLOBAL_CHECKPOINT_S"] = os.environ["TUNE_GLOBAL_CHECKPOINT_S"]
    return env

def start_scheduler(spec: Any, run_id: str, run_dir: str) -> Any:
    import ray

    from mprl.pipeline.scheduler import Scheduler  # imports Tune: only when a run starts

    actor_cls = ray.remote(Scheduler)
    return actor_cls.options(
        name=scheduler_actor_name(run_id), namespace=SCHEDULER_NAMESPACE, lifetime="detached", max_concurrency=4, num_cpus=0,
        runtime_env={"env_vars": _actor_env()}, max_restarts=0,
    ).remote(spec.to_dict(), spec.source, run_id, run_dir)

def find_scheduler(run_id: str) -> Any | None:
    """The live scheduler actor of a run, if any."""
    import ray

    try:
        return ray.get_actor(scheduler_actor_name(run_id), namespace=SCHEDULER_NAMESPACE)
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
    check_cluster_resources(spec)  # a GPU the cluster lacks fails here, not as a silent wait in Tune
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
    recorded = json.loads(record["spec_json"])
    if "imported" in recorded:
        raise MprlError(f"run {record['run_id']} is an import (`mprl import`): it holds one checkpoint and no phases to resume. "
                        f"Start a phase from it with `init_from: {{checkpoint: CK-ID}}` (`mprl runs {record['run_id']}` shows the id).")
    spec = parse_pipeline(recorded, source=f"{run_dir}/pipeline.json")
    run_id = record["run_id"]
    if record["status"] == "succeeded":
        write(f"run {run_id} already succeeded; nothing to resume (`mprl lineage show {run_id}` shows it)")
        return None
    validate_inputs(spec, write)
    init_ray(spec.ray.address, spec.ray.num_cpus)
    check_cluster_resources(spec)
    actor = find_scheduler(run_id)
    if actor is not None:
        write(f"run {run_id}: its scheduler is alive; following it")
    else:
        write(f"run {run_id}: resuming ({record['status']}) → {run_dir}")
        actor = start_scheduler(spec, run_id, run_dir)
    return attach(actor, run_id, run_dir, dirname(run_dir), write, cluster_outlives=_cluster_outlives(spec))
