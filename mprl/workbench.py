"""The web workbench's logic: assets, launching a phase from a checkpoint, stop and resume.

The Serve app (`mprl.serve.app`) answers HTTP; what a request *means* lives here, in plain
functions the app calls in worker threads, so that the page, the JSON API and the tests share
one implementation and none of it depends on FastAPI.

A launch is a form (a JSON object naming a checkpoint by id, never by path) turned into a
pipeline phase whose `init_from` is that checkpoint, validated by the same pydantic models as a
YAML file (`mprl.spec`), so every error the YAML would get comes back attached to the form field
it belongs to. Two modes:

- `branch` (default): the phase is appended to the checkpoint's own run and that run is
  continued by a new phase scheduler, exactly as `mprl resume` continues a run: its finished
  phases are kept, the new one runs, and the lineage records it as a new node seeded from the
  chosen checkpoint (a new branch of that run's tree).
- `new_run`: a one-phase pipeline of its own, in the same storage folder.

The scheduler is the lineage's one writer: nothing here writes a run's SQLite file.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mprl.errors import MprlError

FORM_FIELDS = {
    "checkpoint", "mode", "phase", "name", "algorithm", "paradigm", "env", "dataset", "budget", "select", "seeds",
    "sweep", "config", "evaluation",
}
# A spec location (below `phases[i]`) → the form field that shows its error.
_PHASE_FIELDS = {"name": "phase", "algorithm": "algorithm", "paradigm": "paradigm", "env": "env", "dataset": "dataset",
                 "budget": "budget", "select": "select", "sweep": "sweep", "evaluation": "evaluation", "init_from": "checkpoint"}


class FormError(MprlError):
    """A launch form the spec rejects: {field: message} for the page, one message for the CLI/API."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))


# ---------------------------------------------------------------------------------- assets


def algorithms() -> list[dict[str, Any]]:
    """The catalogue with each algorithm's typed settings (name, type, default, meaning)."""
    from mprl.catalogue import CATALOGUE

    out = []
    for name in sorted(CATALOGUE):
        e = CATALOGUE[name]
        defaults = e.override_fields()
        settings = [{"name": n, "type": kind, "default": _jsonable(defaults.get(n)), "meaning": meaning}
                    for n, kind, _, meaning in e.settings.table()]
        out.append({"name": name, "paradigms": list(e.paradigms), "paradigm": e.paradigm, "description": e.description,
                    "paper": e.paper, "needs_dataset": {p: e.needs_dataset(p) for p in e.paradigms}, "settings": settings})
    return out


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return repr(v)


def environments() -> dict[str, Any]:
    """MuJoCo (and classic control) environment ids a phase can name, and the named variants."""
    from mprl.envs import (
        env_family,
        named_variants,
        reference_scores,
        registered_env_ids,
    )

    keep = re.compile(r"^(Hopper|HalfCheetah|Walker2d|Ant|Humanoid|HumanoidStandup|InvertedPendulum|InvertedDoublePendulum|"
                      r"Reacher|Swimmer|Pusher|Pendulum|MountainCarContinuous)-v\d+$")
    envs = []
    for env_id in registered_env_ids():
        if keep.match(env_id):
            refs = reference_scores(env_id)
            envs.append({"env": env_id, "family": env_family(env_id), "reference_scores": list(refs) if refs else None})
    return {"environments": envs, "variants": named_variants()}


def datasets() -> list[dict[str, Any]]:
    """Local Minari datasets (metadata only: cheap)."""
    from mprl.datasets import list_datasets

    return [{k: v for k, v in row.items() if k != "path"} for row in list_datasets()]


def dataset_details(dataset_id: str) -> dict[str, Any]:
    from mprl.datasets import dataset_info

    info = dataset_info(dataset_id)
    return {k: v for k, v in info.items() if k not in ("path", "policy_checkpoint")}


def imported_checkpoints(storage_path: str | Path) -> list[dict[str, Any]]:
    """Checkpoints registered with `mprl import` (mprl.imports)."""
    from mprl.imports import list_imported

    return list_imported(storage_path)


# ---------------------------------------------------------------------------------- launch


def _budget(value: Any, unit: str) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    return {unit: value}


def phase_from_form(form: Mapping[str, Any], checkpoint: Mapping[str, Any], checkpoint_path: str) -> dict[str, Any]:
    """The pipeline phase a launch form describes (not yet validated)."""
    from mprl.axes import PARADIGM_UNITS
    from mprl.catalogue import CATALOGUE

    unknown = sorted(set(form) - FORM_FIELDS)
    if unknown:
        raise FormError({u: f"unknown field; the form has {', '.join(sorted(FORM_FIELDS))}" for u in unknown})
    algorithm = form.get("algorithm") or checkpoint["algorithm"]
    entry = CATALOGUE.get(algorithm) if isinstance(algorithm, str) else None
    paradigm = form.get("paradigm") or (entry.paradigm if entry else None)
    unit = PARADIGM_UNITS.get(paradigm, "env_steps") if isinstance(paradigm, str) else "env_steps"
    phase: dict[str, Any] = {
        "name": form.get("phase") or f"{algorithm}-from-{checkpoint['checkpoint_id'][3:9]}",
        "algorithm": algorithm,
        "env": form.get("env") or checkpoint["env"],
        "budget": _budget(form.get("budget"), unit),
        "init_from": {"checkpoint": checkpoint_path},
    }
    if form.get("paradigm"):
        phase["paradigm"] = form["paradigm"]
    if form.get("dataset"):
        phase["dataset"] = form["dataset"]
    for key in ("select", "sweep", "config", "evaluation"):
        if form.get(key) not in (None, "", [], {}):
            phase[key] = form[key]
    if form.get("seeds") not in (None, "", []):
        phase["tune"] = {"seeds": form["seeds"]}
    return phase


def _field_of(loc: tuple, phase_index: int) -> str:
    """The form field a spec error location belongs to."""
    if len(loc) >= 2 and loc[0] == "phases" and loc[1] == phase_index:
        rest = loc[2:]
        if not rest:
            return "phase"
        if rest[0] == "config":
            return f"config.{rest[1]}" if len(rest) > 1 else "config"
        if rest[0] == "tune":
            return "seeds" if len(rest) > 1 and rest[1] == "seeds" else "tune"
        return _PHASE_FIELDS.get(str(rest[0]), str(rest[0]))
    if loc and loc[0] == "name":
        return "name"
    return "phase" if loc and loc[0] == "phases" else ".".join(map(str, loc)) or "form"


def validate_spec(data: dict[str, Any], phase_index: int, source: str) -> Any:
    """The pipeline, validated exactly as `mprl run` validates a YAML file; a FormError whose
    fields are the form's names otherwise."""
    from pydantic import ValidationError

    from mprl.spec.messages import _explain
    from mprl.spec.models import PipelineSpec

    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            field = _field_of(tuple(error["loc"]), phase_index)
            msg = _explain(PipelineSpec, error)
            fields[field] = f"{fields[field]}; {msg}" if field in fields else msg
        raise FormError(fields) from None
    spec._source = source
    return spec


class Launch:
    """A validated launch: the spec to run, where, and what it adds."""

    def __init__(self, spec: Any, mode: str, run_id: str | None, run_dir: str | None, phase: str, checkpoint_id: str, checkpoint_path: str) -> None:
        self.spec, self.mode, self.run_id, self.run_dir = spec, mode, run_id, run_dir
        self.phase, self.checkpoint_id, self.checkpoint_path = phase, checkpoint_id, checkpoint_path

    def yaml(self) -> str:
        """The pipeline YAML this launch corresponds to (`mprl run FILE` / the resumed run)."""
        head = (f"# mprl workbench: phase '{self.phase}' from checkpoint {self.checkpoint_id} ({self.mode}"
                + (f" of run {self.run_id}" if self.mode == "branch" else "") + ")\n")
        if self.mode == "branch":
            head += f"# the page continued run {self.run_id} with this spec, as `mprl resume {self.run_id}` would\n"
        return head + self.spec.to_yaml()


def plan_launch(form: Mapping[str, Any], catalog: Any, storage_path: str) -> Launch:
    """Form → validated Launch (nothing started, nothing written). Raises FormError / MprlError."""
    from mprl.imports import is_import
    from mprl.lineage import LineageStore
    from mprl.lineage.store import stored_path

    if not isinstance(form, Mapping):
        raise FormError({"form": "the launch request must be a JSON object"})
    ck = form.get("checkpoint")
    if not isinstance(ck, str) or not ck.startswith("ck-"):
        raise FormError({"checkpoint": "name the checkpoint to continue from by its id ('ck-…'); requests never name paths"})
    found = catalog.checkpoint(ck)
    if found is None:
        raise FormError({"checkpoint": f"no checkpoint {ck!r} in the runs this server serves"})
    run_dir, record = found
    path = str(stored_path(run_dir, record["path"]))
    with LineageStore(run_dir, readonly=True) as store:
        imported = is_import(json.loads(store.run()["spec_json"] or "{}"))
    mode = form.get("mode") or ("new_run" if imported else "branch")
    if mode not in ("branch", "new_run"):
        raise FormError({"mode": f"'branch' (extend run {record['run_id']}) or 'new_run', got {mode!r}"})
    if mode == "branch" and imported:
        raise FormError({"mode": f"{ck} was imported with `mprl import`: its run holds only it. Choose 'new run'."})
    phase = phase_from_form(form, record, path)
    if mode == "branch":
        with LineageStore(run_dir, readonly=True) as store:
            run = store.run()
        base = json.loads(run["spec_json"] or "{}")
        if form.get("name"):
            raise FormError({"name": "a branch belongs to its run, which keeps its name; clear it, or choose 'new run'"})
        data = {**base, "phases": [*base.get("phases", []), phase]}
        spec = validate_spec(data, len(data["phases"]) - 1, f"{run['run_id']} (+ {phase['name']})")
        return Launch(spec, mode, run["run_id"], str(run_dir), phase["name"], ck, path)
    data = {"name": form.get("name") or f"{phase['name']}", "storage_path": storage_path, "videos": {"selected": False}, "phases": [phase]}
    spec = validate_spec(data, 0, f"new run {data['name']}")
    return Launch(spec, mode, None, None, phase["name"], ck, path)


def transfer_check(launch: Launch) -> dict[str, Any]:
    """What `init_from` will load into the new phase's networks (the report the scheduler's
    preflight writes), before anything starts: {possible, summary, report}."""
    from mprl.errors import CheckpointError
    from mprl.pipeline.phases import phase_config, reference_scores_for
    from mprl.transfer import check_checkpoint, one_line

    phase = launch.spec.phase(launch.phase)
    try:
        cfg = phase_config(phase, launch.checkpoint_path, reference_scores_for(phase))
        report = check_checkpoint(launch.checkpoint_path, cfg, algorithm=phase.algorithm)
    except CheckpointError as e:
        return {"possible": False, "summary": str(e), "report": None}
    return {"possible": bool(report.possible), "summary": one_line(report).removeprefix("transfer: "), "report": report.to_dict()}


def run_is_active(run_id: str) -> bool:
    from mprl.pipeline.driver import find_scheduler

    return find_scheduler(run_id) is not None


def start_launch(launch: Launch, write: Any = None) -> tuple[str, str, Any]:
    """Start the launch's scheduler (detached, on the connected Ray): (run_id, run_dir, actor)."""
    from mprl.pipeline.driver import new_run_id, start_scheduler, validate_inputs
    from mprl.storage import join

    write = write or (lambda _line: None)
    validate_inputs(launch.spec, write)  # the checkpoint loads, datasets exist (or are built), spaces match
    if launch.mode == "branch":
        if run_is_active(launch.run_id):
            raise MprlError(f"run {launch.run_id} is still running: stop it, or wait for it to end, before adding a phase to it")
        run_id, run_dir = launch.run_id, launch.run_dir
    else:
        run_id = new_run_id(launch.spec.name)
        run_dir = join(launch.spec.resolved_storage_path, run_id)
    actor = start_scheduler(launch.spec, run_id, run_dir)
    return run_id, run_dir, actor


def resume_spec(run_dir: str | Path) -> tuple[str, Any, str]:
    """(run id, spec, status) of a run to resume from its lineage."""
    from mprl.lineage import LineageStore
    from mprl.spec import parse_pipeline

    with LineageStore(run_dir, readonly=True) as store:
        record = store.run()
    spec = parse_pipeline(json.loads(record["spec_json"]), source=f"{run_dir}/pipeline.json")
    return record["run_id"], spec, record["status"]


# ---------------------------------------------------------------------------------- dataset builds


class DatasetJobs:
    """Dataset builds started from the page, each in a thread; progress parsed from the
    builder's progress lines ('[label] done/total steps …')."""

    STEP_RE = re.compile(r"\[(?P<label>[^\]]+)\] (?P<done>\d+)/(?P<total>\d+) steps")

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def start(self, env: str, quality: str, size: int, dataset_id: str | None, seed: int = 0, budget: int | None = None) -> dict[str, Any]:
        from mprl.datasets import default_dataset_id
        from mprl.datasets.store import local_dataset_ids

        did = dataset_id or default_dataset_id(env, quality)
        with self.lock:
            if any(j["dataset_id"] == did and j["state"] in ("queued", "running") for j in self.jobs.values()):
                raise MprlError(f"dataset {did} is being built already")
        if did in local_dataset_ids():
            raise MprlError(f"dataset {did} exists already: use it, or give another id")
        job_id = f"ds-{int(time.time() * 1000):x}"
        job = {"job_id": job_id, "dataset_id": did, "env": env, "quality": quality, "size": size, "state": "running",
               "stage": "starting", "done": 0, "total": size, "fraction": 0.0, "lines": [], "error": None, "started_at": time.time()}
        with self.lock:
            self.jobs[job_id] = job
        threading.Thread(target=self._build, args=(job, seed, budget), daemon=True, name=f"mprl-{job_id}").start()
        return dict(job)

    def _build(self, job: dict[str, Any], seed: int, budget: int | None) -> None:
        from mprl.datasets import build_dataset

        stages: list[str] = []

        def progress(line: str) -> None:
            job["lines"] = [*job["lines"][-49:], line]
            m = self.STEP_RE.search(line)
            if m:
                label = m["label"]
                if label not in stages:
                    stages.append(label)
                job.update(stage=label, done=int(m["done"]), total=int(m["total"]))
                # Training then recording: each stage its share of the bar.
                n_stages = 2 if job["quality"] != "random" else 1
                job["fraction"] = min(1.0, (len(stages) - 1 + int(m["done"]) / max(1, int(m["total"]))) / n_stages)

        try:
            build_dataset(job["env"], job["quality"], size=job["size"], budget=budget, seed=seed, dataset_id=job["dataset_id"], progress=progress)
            job.update(state="done", fraction=1.0, seconds=time.time() - job["started_at"])
        except Exception as e:  # noqa: BLE001 - shown on the page as the job's error
            job.update(state="failed", error=str(e) if isinstance(e, MprlError) else f"{type(e).__name__}: {e}")

    def get(self, job_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(job_id)
        return dict(job) if job is not None else None
