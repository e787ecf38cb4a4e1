"""The MLflow and W&B logger callbacks of `mprl.tracking`: Tune's, with mprl's lineage ids.

A module of their own, imported only when a pipeline asks for them (Ray's integrations import
mlflow and wandb, which takes seconds), and at module level so that the callbacks Tune pickles
into its experiment state restore by name on `mprl resume`.
"""

from __future__ import annotations

from typing import Any

from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback, _QueueItem

from mprl.tracking import _PARAM_CHARS, _flat, _Lineage, _scalar


class LineageMLflow(MLflowLoggerCallback):
    """One MLflow run per trial, named '<phase run> · <point> · seed N · <trial id>', tagged
    mprl.run_id / mprl.phase / mprl.node_id / mprl.trial_id / mprl.sweep_point /
    mprl.checkpoint_ids. Params and metrics go in batches (one database write, not one per key)."""

    def __init__(self, lineage: dict[str, str], location: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ids = _Lineage(lineage, location)

    def log_trial_start(self, trial: Any) -> None:
        from mlflow.entities import Param

        if trial in self._trial_runs:
            return
        tags = {**(self.tags or {}), **{f"mprl.{k}": v for k, v in self.ids.ids_of(trial).items()}, "trial_name": str(trial)}
        run = self.mlflow_util.start_run(tags=tags, run_name=self.ids.run_name(trial))
        self._trial_runs[trial] = run.info.run_id
        params = [Param(k, str(v)[:_PARAM_CHARS]) for k, v in _flat(trial.config).items() if _scalar(v)]
        client = self.mlflow_util._get_client()
        for i in range(0, len(params), 100):  # MLflow's batch limit for params
            client.log_batch(run.info.run_id, params=params[i:i + 100])

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        import time

        from mlflow.entities import Metric

        step = int(result.get("timesteps_total") or result.get("training_iteration") or iteration)
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in _flat({k: v for k, v in result.items() if k != "config"}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        client = self.mlflow_util._get_client()
        for i in range(0, len(metrics), 1000):  # MLflow's batch limit for metrics
            client.log_batch(self._trial_runs[trial], metrics=metrics[i:i + 1000])

    def log_trial_save(self, trial: Any) -> None:
        ids = self.ids.saved(trial)
        if ids and trial in self._trial_runs:
            client = self.mlflow_util._get_client()
            client.set_tag(self._trial_runs[trial], "mprl.checkpoint_ids", ",".join(ids)[-5000:])
            client.set_tag(self._trial_runs[trial], "mprl.last_checkpoint_id", ids[-1])

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        if self.should_save_artifact:
            self.mlflow_util.save_artifacts(run_id=self._trial_runs[trial], dir=trial.local_path)
        self.mlflow_util.end_run(run_id=self._trial_runs[trial], status="FAILED" if failed else "FINISHED")


class LineageWandb(WandbLoggerCallback):
    """One W&B run per trial: id '<run id>-<trial id>', name '<phase run> · <point> · seed N ·
    <trial id>', group the run id, tags the run id and phase, `config.mprl` the lineage ids
    (`config.mprl_checkpoint_ids` growing as checkpoints are saved)."""

    def __init__(self, lineage: dict[str, str], location: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ids = _Lineage(lineage, location)

    def setup(self, *args: Any, **kwargs: Any) -> None:
        if self.kwargs.get("mode") in ("offline", "disabled"):
            return  # no API key to look for: nothing leaves this machine
        super().setup(*args, **kwargs)

    def _start_logging_actor(self, trial: Any, exclude_results: list[str], **init: Any) -> None:
        ids = self.ids.ids_of(trial)
        init.update(id=f"{ids['run_id']}-{trial.trial_id}", name=self.ids.run_name(trial),
                    tags=[*init.get("tags", []), ids["run_id"], ids["phase"]],
                    config={**init.get("config", {}), "mprl": ids})
        super()._start_logging_actor(trial, exclude_results, **init)

    def log_trial_save(self, trial: Any) -> None:
        super().log_trial_save(trial)
        ids = self.ids.saved(trial)
        if ids and trial in self._trial_queues:
            step = (trial.last_result or {}).get("training_iteration")
            self._trial_queues[trial].put((_QueueItem.RESULT, {"config": {"mprl_checkpoint_ids": list(ids)}, "training_iteration": step}))
