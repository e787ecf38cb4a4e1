"""Experiment trackers, switched on in the pipeline's `tracking:` section, fed by Tune's own
logger callbacks: TensorBoard (`TBXLoggerCallback`), MLflow (`MLflowLoggerCallback`) and W&B
(`WandbLoggerCallback`).

Each callback is Tune's, subclassed only to attach mprl's lineage ids — run id, pipeline,
phase and phase run (node), trial id, sweep point, seed, and the `ck-…` id of every checkpoint
as Tune saves it — so that a run found in TensorBoard, MLflow or W&B leads back to
`mprl lineage show RUN`. The callbacks run in the phase scheduler actor (Tune's driver), so
paths are that node's. A missing package is one error before anything starts
(`check_tracking`, called by `mprl.pipeline.driver.validate_inputs`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from ray.tune.logger import TBXLoggerCallback

from mprl.errors import MprlError
from mprl.progress import trial_name
from mprl.search import trial_label
from mprl.storage import fs_path, is_uri

INSTALL = "pip install 'mprl[tracking]'"
#: the packages each tracker imports (MLflow's default sqlite store needs SQLAlchemy and Alembic)
PACKAGES = {"tensorboard": ["tensorboardX"], "mlflow": ["mlflow", "sqlalchemy", "alembic"], "wandb": ["wandb"]}
MLFLOW_DB = "mlflow.db"
_PARAM_CHARS = 250  # MLflow params are strings of limited length: longer values are cut


def _installed(module: str) -> bool:
    if module in sys.modules:  # None there means an import that must fail
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def mlflow_uri(spec: Any) -> str:
    """tracking.mlflow.tracking_uri, else a SQLite file beside the runs: <storage_path>/mlflow.db."""
    given = spec.tracking.mlflow.tracking_uri
    return given if given else f"sqlite:///{Path(spec.resolved_storage_path) / MLFLOW_DB}"


def check_tracking(spec: Any) -> None:
    """The trackers a pipeline asks for can start: their packages are installed, MLflow has a
    store, W&B online has a key. One MprlError naming the fix, before Ray starts."""
    t = spec.tracking
    wanted = [name for name in PACKAGES if (t.tensorboard if name == "tensorboard" else getattr(t, name) is not None)]
    for name in wanted:
        needs = PACKAGES[name]
        if name == "mlflow" and t.mlflow.tracking_uri and not t.mlflow.tracking_uri.startswith(("sqlite:", "postgresql", "mysql", "mssql")):
            needs = needs[:1]  # a server or a file store: no database packages
        missing = [m for m in needs if not _installed(m)]
        if missing:
            off = "tensorboard: false" if name == "tensorboard" else f"remove tracking.{name}"
            raise MprlError(f"tracking.{name} is switched on but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: "
                            f"{INSTALL} (or {off}).")
    if t.mlflow is not None and not t.mlflow.tracking_uri and spec.storage_is_uri:
        raise MprlError(f"tracking.mlflow: storage_path {spec.storage_path!r} is object storage, so there is no local folder for the default "
                        f"sqlite:///…/{MLFLOW_DB}; set tracking.mlflow.tracking_uri (an MLflow server such as http://mlflow:5000, or a database).")
    if t.wandb is not None and t.wandb.mode == "online" and not os.environ.get("WANDB_API_KEY") and not _wandb_logged_in():
        raise MprlError("tracking.wandb: mode online needs a W&B API key: set WANDB_API_KEY or run `wandb login` "
                        "(or write mode: offline and `wandb sync` the runs later).")


def _wandb_logged_in() -> bool:
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="replace")


def _rel(location: str, path: str) -> str:
    """A checkpoint path as the lineage stores it (`LineageStore.rel`): relative to the run folder."""
    if is_uri(location):
        p, base = fs_path(str(path)), fs_path(location)
        return p[len(base) + 1:] if p.startswith(base + "/") else str(path)
    try:
        return str(Path(path).resolve().relative_to(Path(location).resolve()))
    except ValueError:
        return str(path)


class _Lineage:
    """What every tracker attaches: the ids that lead back to the lineage."""

    def __init__(self, lineage: dict[str, str], location: str) -> None:
        self.lineage, self.location = lineage, location
        self.checkpoints: dict[str, list[str]] = {}  # trial id → ck-… ids in save order

    def ids_of(self, trial: Any) -> dict[str, str]:
        point = trial_label(trial.config)
        ids = {**self.lineage, "trial_id": trial.trial_id, "seed": str(trial.config.get("seed"))}
        return {**ids, "sweep_point": point} if point else ids

    def run_name(self, trial: Any) -> str:
        return f"{self.lineage['node_id']} · {trial_name(trial.config)} · {trial.trial_id}"

    def saved(self, trial: Any) -> list[str]:
        """The id of the checkpoint Tune just saved, appended to the trial's list."""
        from mprl.lineage.store import checkpoint_id

        ids = self.checkpoints.setdefault(trial.trial_id, [])
        if trial.checkpoint is not None:
            cid = checkpoint_id(self.lineage["run_id"], _rel(self.location, trial.checkpoint.path))
            if cid not in ids:
                ids.append(cid)
        return ids


class LineageTensorBoard(TBXLoggerCallback):
    """Tune's TensorBoard events in each trial folder, plus an `mprl/lineage` text summary and an
    `mprl/checkpoint` text at every checkpoint (TensorBoard's Text tab)."""

    def __init__(self, lineage: dict[str, str], location: str) -> None:
        super().__init__()
        self.ids = _Lineage(lineage, location)

    def log_trial_start(self, trial: Any) -> None:
        super().log_trial_start(trial)
        text = "\n".join(f"- **{k}**: `{v}`" for k, v in self.ids.ids_of(trial).items())
        self._trial_writer[trial].add_text("mprl/lineage", text, global_step=0)
        self._trial_writer[trial].flush()

    def log_trial_save(self, trial: Any) -> None:
        ids = self.ids.saved(trial)
        if ids and trial in self._trial_writer:
            step = (trial.last_result or {}).get("training_iteration", len(ids))
            self._trial_writer[trial].add_text("mprl/checkpoint", ids[-1], global_step=step)
            self._trial_writer[trial].flush()


class NoTensorBoard(TBXLoggerCallback):
    """`tensorboard: false`: Tune adds its TensorBoard logger unless one is there; this one writes nothing."""

    def __init__(self) -> None:  # no SummaryWriter, no tensorboardX import
        self._trial_writer, self._trial_result = {}, {}

    def log_trial_start(self, trial: Any) -> None:
        pass

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        pass

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        pass


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "/"))
        else:
            out[key] = v
    return out


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (int, float, str, bool))


def tracking_callbacks(spec: Any, phase: Any, run_id: str, location: str, local_dir: str | Path, node_id: str) -> list[Any]:
    """The Tune callbacks of a phase run's experiment for the pipeline's `tracking:` section.
    `location` is the run folder or URI (checkpoint ids are relative to it); `local_dir` is the
    scheduler's local folder of the run (W&B's offline files go there)."""
    t = spec.tracking
    lineage = {"run_id": run_id, "pipeline": spec.name, "phase": phase.name, "node_id": node_id,
               "algorithm": phase.algorithm, "env": phase.env, "run_folder": str(location)}
    callbacks: list[Any] = [LineageTensorBoard(lineage, location) if t.tensorboard else NoTensorBoard()]
    if t.mlflow is not None:  # mprl.tracking_loggers imports mlflow and wandb (seconds): only when asked for
        from mprl.tracking_loggers import LineageMLflow

        m = t.mlflow
        callbacks.append(LineageMLflow(lineage, location, tracking_uri=mlflow_uri(spec), experiment_name=m.experiment_name or spec.name,
                                       tags=dict(m.tags), save_artifact=m.save_artifact))
    if t.wandb is not None:
        from mprl.tracking_loggers import LineageWandb

        w = t.wandb
        Path(w.dir or local_dir).mkdir(parents=True, exist_ok=True)
        extra = {k: v for k, v in (("entity", w.entity),) if v}
        callbacks.append(LineageWandb(lineage, location, project=w.project or spec.name, group=w.group or run_id, mode=w.mode,
                                      dir=str(w.dir or local_dir), tags=list(w.tags), job_type=phase.name, **extra))
    return callbacks
