"""The phase scheduler: a named, detached Ray actor that owns one pipeline run.

For each phase it runs one Ray Tune experiment per seeding checkpoint (a *node* of the
lineage tree), records trials, metrics, checkpoints, transfers and videos in the run's
lineage store (it is the store's only writer), picks the checkpoints that seed the next
phase, and goes on. A new scheduler for the same run (`mprl resume`) skips finished nodes
and restores an unfinished node from Tune's experiment state.

A run in remote storage (a URI): Tune writes trials and checkpoints there itself; the files
the scheduler writes (lineage, reports, transfer reports) live in a local staging folder and
are uploaded as they change (the lineage at most every `LINEAGE_SYNC_S` seconds during a
phase — MPRL_LINEAGE_SYNC_S, default 15 — and at every phase start and end, stop and run end);
videos are uploaded by the tasks that render them.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ray import tune

from mprl import search, storage
from mprl.axes import BUDGET_KEYS
from mprl.catalogue import get_algorithm
from mprl.errors import CheckpointError, MprlError
from mprl.lineage import AXES, LINEAGE_FILE, LineageStore, config_hash
from mprl.lineage.writer import SCHEDULER_NAMESPACE, scheduler_actor_name
from mprl.progress import PhaseProgress
from mprl.pipeline.phases import PhaseResult, phase_config, quiet_tune, reference_scores_for
from mprl.pipeline.reports import write_branch_report, write_sweep_report
from mprl.preflight import check_phase_resources
from mprl.spec import PipelineSpec, parse_pipeline, sweep_label
from mprl.tracking import tracking_callbacks

NAMESPACE = SCHEDULER_NAMESPACE
LINEAGE_SYNC_S = float(os.environ.get("MPRL_LINEAGE_SYNC_S", 15))  # remote storage: the lineage's upload interval
_CURRENT: Scheduler | None = None  # the scheduler of this process; Tune callbacks reach it here


def actor_name(run_id: str) -> str:
    return scheduler_actor_name(run_id)


def _emit(line: str) -> None:
    """Module-level, so callbacks pickled into Tune's experiment state hold no scheduler."""
    if _CURRENT is not None:
        _CURRENT.write(line)


class LineageCallback(PhaseProgress):
    """Progress lines, plus every trial, result and checkpoint recorded as Tune reports it."""

    def __init__(self, node_id: str, budget_key: str, budget: int) -> None:
        super().__init__(node_id, budget_key, budget, _emit)
        self.node_id = node_id

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        super().on_trial_start(iteration, trials, trial, **info)
        if _CURRENT is not None:
            _CURRENT.on_trial(self.node_id, trial, "running")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        super().on_trial_result(iteration, trials, trial, result, **info)
        if _CURRENT is not None:
            _CURRENT.on_result(self.node_id, trial, result)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        if _CURRENT is not None:
            _CURRENT.on_checkpoint(self.node_id, trial, checkpoint.path)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _CURRENT is not None:
            _CURRENT.on_trial(self.node_id, trial, "succeeded")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        super().on_trial_error(iteration, trials, trial, **info)
        if _CURRENT is not None:
            _CURRENT.on_trial(self.node_id, trial, "failed")


class PhaseStopper(tune.Stopper):
    """A trial ends on its budget, on a score threshold, or after `plateau` evaluations
    without an improvement of more than `min_delta`."""

    def __init__(self, metric: str, mode: str, score: float | None, plateau: int | None, min_delta: float) -> None:
        self.metric, self.sign = metric, 1.0 if mode == "max" else -1.0
        self.score, self.plateau, self.min_delta = score, plateau, min_delta
        self.best: dict[str, float] = {}
        self.since: dict[str, int] = {}
        self.reasons: dict[str, str] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if result.get("budget_done"):
            self.reasons[trial_id] = "budget"
            return True
        value = result.get(self.metric)
        if value is None:
            return False
        if self.score is not None and self.sign * value >= self.sign * self.score:
            self.reasons[trial_id] = f"{self.metric} reached {self.score}"
            return True
        if self.plateau is not None:
            if trial_id not in self.best or self.sign * value > self.sign * self.best[trial_id] + self.min_delta:
                self.best[trial_id], self.since[trial_id] = value, 0
            else:
                self.since[trial_id] += 1
                if self.since[trial_id] >= self.plateau:
                    self.reasons[trial_id] = f"plateau: no improvement in {self.plateau} evaluations"
                    return True
        return False

    def stop_all(self) -> bool:
        return False


def select_checkpoints(candidates: list[tuple[str, dict[str, Any]]], phase: Any, metric: str, budget_key: str) -> list[tuple[str, str]]:
    """(checkpoint path, selection label) by the phase's rule, from (path, metrics) of every
    kept checkpoint of every trial of a node."""
    sign = 1 if phase.tune.mode == "max" else -1
    scored = [(p, m) for p, m in candidates if m.get(metric) is not None]
    if not scored:
        raise MprlError(f"Phase '{phase.name}': no checkpoint reported the metric '{metric}'. Set `tune.metric: evaluation_return` or enable evaluation.")
    score = lambda pm: sign * pm[1][metric]  # noqa: E731
    rule = phase.select
    if rule.rule == "best":
        return [(max(scored, key=score)[0], "best")]
    by_trial: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for p, m in scored:
        by_trial.setdefault(m["trial_id"], []).append((p, m))
    for ckpts in by_trial.values():
        ckpts.sort(key=lambda pm: pm[1].get(budget_key, 0))
    # A trial stopped before its budget (ASHA, median stopping, a stop rule) has no checkpoint at
    # the budget: `last` and `at` take the trials that got there, when any did.
    if rule.rule == "last":
        done = [c for c in by_trial.values() if c[-1][1].get("budget_done")] or list(by_trial.values())
        return [(max((c[-1] for c in done), key=score)[0], "last")]
    if rule.rule == "top_k":
        ranked = sorted(scored, key=score, reverse=True)[: rule.k]
        return [(p, rule.label(phase.budget_value, phase.budget_unit, i)) for i, (p, _) in enumerate(ranked)]
    chosen = []
    for i, point in enumerate(rule.points(phase.budget_value)):
        reached = [c for c in by_trial.values() if c[-1][1].get(budget_key, 0) >= point] or list(by_trial.values())
        at_point = [next((pm for pm in c if pm[1].get(budget_key, 0) >= point), c[-1]) for c in reached]
        chosen.append((max(at_point, key=score)[0], rule.label(phase.budget_value, phase.budget_unit, i)))
    return chosen


class Scheduler:
    """Runs as a threaded, detached actor: `run` on one thread, `poll`/`stop` on others."""

    def __init__(self, spec: dict[str, Any], source: str, run_id: str, run_dir: str) -> None:
        global _CURRENT
        _CURRENT = self
        self.spec: PipelineSpec = parse_pipeline(spec, source=source)
        self.run_id = run_id
        self.location = run_dir  # where the run lives: a local folder, or a URI
        self.remote = storage.is_uri(run_dir)
        self.run_dir = storage.cache_root() / "staging" / run_id if self.remote else Path(run_dir)  # what this actor writes
        self.synced_at = 0.0
        if self.remote and storage.exists(storage.join(run_dir, LINEAGE_FILE)):  # a resume, maybe on another node
            for stale in self.run_dir.glob(f"{LINEAGE_FILE}*"):  # an old -wal would be replayed into the new copy
                stale.unlink()
            storage.download(storage.join(run_dir, LINEAGE_FILE), self.run_dir / LINEAGE_FILE)
        self.store = LineageStore(self.run_dir, root=run_dir)
        self.store.create_run(run_id, self.spec.name, self.spec.to_dict(), self.spec.resolved_storage_path)
        (self.run_dir / "pipeline.json").write_text(json.dumps(self.spec.to_dict(), indent=2))
        self._upload("pipeline.json")
        self._sync_lineage()
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.started = False
        self.summary: dict[str, Any] | None = None
        self.exception: MprlError | None = None  # handed to the driver, which raises it as is
        self.videos: list[tuple[Any, str]] = []  # (pending Ray ref, checkpoint id)
        self.video_jobs: dict[str, dict[str, Any]] = {}  # checkpoint id → what its video task renders
        self.checkpoint_counts: dict[str, int] = {}
        self.first_step_at: dict[str, float] = {}
        self.last_trial_end: dict[str, float] = {}
        self.fit_start: dict[str, float] = {}
        self.trial_start: dict[str, float] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.handover_from: dict[str, str] = {}  # a node that searches its hand-over point → the node it starts from

    # ---- the driver's view
    def write(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)  # also in the actor's log (and a job's logs)

    def poll(self, offset: int) -> tuple[list[str], int]:
        """Progress lines from `offset` on, and the next offset."""
        return self.lines[offset:], len(self.lines)

    def stop(self) -> None:
        """Mark the run and its unfinished phases stopped and write its summary; the caller then
        kills this actor, as a crash would end it: Tune's experiment state and the lineage let
        `mprl resume` continue the run."""
        message = "stopped by the user; continue with `mprl resume`"
        for node in self.store.nodes():
            if node["status"] == "running":
                self.store.set_node_status(node["node_id"], "stopped", message)
        self.store.set_run_status("stopped", message)
        self.summary = self._summary("stopped", message)
        self._write_summary()
        self._sync_lineage()

    def record_video(self, checkpoint_id: str, path: str, **fields: Any) -> str:
        """A video made outside this actor (Serve, `mprl video`): this actor is the lineage's writer."""
        vid = self.store.record_video(checkpoint_id, path, **fields)
        self._sync_lineage(every=LINEAGE_SYNC_S)
        return vid

    def _write_summary(self) -> None:
        (self.run_dir / "summary.json").write_text(json.dumps(self.summary, indent=2, default=str))
        self._upload("summary.json")

    # ---- remote storage: upload what this actor wrote (no-ops for a local run folder)
    def _upload(self, rel: str) -> None:
        if self.remote and (self.run_dir / rel).exists():
            storage.upload(self.run_dir / rel, storage.join(self.location, rel))

    def _located(self, path: str) -> str:
        """A checkpoint path as readers use it: Tune names remote ones without their scheme."""
        return str(self.store.abs(self.store.rel(path)))

    def _sync_lineage(self, every: float = 0.0) -> None:
        """Upload a consistent snapshot of the lineage, at most once per `every` seconds."""
        if not self.remote or time.time() - self.synced_at < every:
            return
        self.synced_at = time.time()
        (self.run_dir / "upload").mkdir(exist_ok=True)
        snapshot = self.store.snapshot(self.run_dir / "upload" / LINEAGE_FILE)
        storage.upload(snapshot, storage.join(self.location, LINEAGE_FILE))

    def start(self) -> None:
        """Run in the background and return at once: a detached driver may exit now."""
        threading.Thread(target=self.run, name="mprl-run", daemon=True).start()

    def run(self) -> dict[str, Any]:
        """Run (or, on a resumed run, continue) the pipeline; a second caller waits for the first."""
        with self.lock:
            first = not self.started
            self.started = True
        if not first:
            self.done.wait()
            return {**(self.summary or {}), "exception": self.exception}
        try:
            self.store.set_run_status("running")
            self._run_phases()
            if self.remote:  # a remote run's lineage is uploaded by this actor: it waits for its videos
                self._finish_videos(timeout=600)
            self.store.set_run_status("succeeded")
            self.summary = self._summary("succeeded")
            self.summary["videos_pending"] = self._pending_videos()
        except BaseException as e:  # noqa: BLE001 - any failure ends the run with a readable status
            message = str(e) if isinstance(e, MprlError) else f"{type(e).__name__}: {e}"
            if not isinstance(e, MprlError):
                self.write(traceback.format_exc())
            self.store.set_run_status("failed", message)
            self.summary = self._summary("failed", message)
            self.exception = e if isinstance(e, MprlError) else None
        finally:
            try:
                self._write_summary()
                self._sync_lineage()
                if self.remote and self.summary["status"] == "succeeded":  # all of it is in the bucket now
                    self.store.close()
                    shutil.rmtree(self.run_dir, ignore_errors=True)
            except MprlError as e:
                self.write(f"could not upload the run's final lineage (kept in {self.run_dir}): {e}")
            self.done.set()
        return {**self.summary, "exception": self.exception}

    def _summary(self, status: str, error: str | None = None) -> dict[str, Any]:
        results = [json.loads(n["result_json"]) for n in self.store.nodes() if n["result_json"]]
        return {"status": status, "error": error, "run_id": self.run_id, "run_dir": self.location, "phases": results}

    # ---- the pipeline
    def _run_phases(self) -> None:
        nodes_of: dict[str, list[str]] = {}
        for ordinal, phase in enumerate(self.spec.phases):
            if phase.dataset_from:  # an earlier phase's experience, built once (mprl.datasets.from_phase)
                self._phase_dataset(phase, nodes_of)
            parents: list[dict[str, Any] | None]
            if phase.init_from is not None and phase.init_from.ensemble:  # K checkpoints at once, one per member (Off2On)
                parents = [self._ensemble_parent(phase, nodes_of)]
            elif phase.init_from_phase and search.searches_handover(phase):  # each trial starts at its sampled point
                parents = [self._handover_parent(n) for n in nodes_of[phase.init_from_phase]]
            elif phase.chooses:  # a validated choice: offline RL's candidates or the paused policy (mprl.pipeline.choose)
                parents = [self._chosen_parent(phase, nodes_of)]
            elif phase.init_from_phase:
                parents = [c for n in nodes_of[phase.init_from_phase] for c in self.store.checkpoints(n, selected_only=True)]
            elif phase.init_checkpoint_path:
                parents = [self._given_parent(phase.init_checkpoint_path)]
            else:
                parents = [None]
            nodes_of[phase.name] = []
            for i, parent in enumerate(parents):
                node_id = phase.name if len(parents) == 1 else f"{phase.name}.b{i}"
                nodes_of[phase.name].append(node_id)
                if parent is not None and parent.get("handover_from"):
                    self.handover_from[node_id] = parent["handover_from"]
                existing = self.store.node(node_id)
                if existing is not None and existing["status"] == "succeeded":
                    self.write(f"[{node_id}] finished in an earlier attempt; kept")
                    if self.spec.videos.selected:  # videos that a stop cut short
                        for c in self.store.checkpoints(node_id, selected_only=True):
                            self._video(c["checkpoint_id"], str(self.store.abs(c["path"])), phase.env)
                    continue
                self._run_node(phase, ordinal, node_id, parent, resume=existing is not None, branched=len(parents) > 1)
            if len(nodes_of[phase.name]) > 1:
                write_branch_report(self.store, phase, nodes_of[phase.name], self.run_dir / phase.name, self.write)
                self._upload(phase.name)

    def _ensemble_parent(self, phase: Any, nodes_of: dict[str, list[str]]) -> dict[str, Any]:
        """`init_from: {phase: P, top_k: K, as: ensemble}`: the best checkpoint of each of P's K best
        trials (by P's metric: normalized_score where recorded, else evaluation_return), best first;
        the parent names the first and lists all under `members` (each a parent edge of the node in the lineage)."""
        init = phase.init_from
        source = self.spec.phase(init.phase)
        sign = -1 if (source is not None and source.tune.mode == "min") else 1
        ckpts = [c for n in nodes_of[init.phase] for c in self.store.checkpoints(n)]
        key = "normalized_score" if ckpts and all(c.get("normalized_score") is not None for c in ckpts) else "evaluation_return"
        best: dict[str, dict[str, Any]] = {}
        for c in ckpts:
            if c.get(key) is None:
                continue
            if c["trial_id"] not in best or sign * c[key] > sign * best[c["trial_id"]][key]:
                best[c["trial_id"]] = c
        ranked = sorted(best.values(), key=lambda c: sign * c[key], reverse=True)[: init.top_k]
        if len(ranked) < init.top_k:
            raise MprlError(f"Phase '{phase.name}': init_from top_k: {init.top_k} needs {init.top_k} trials of '{init.phase}' with a "
                            f"checkpoint, and it has {len(ranked)}; give '{init.phase}' {init.top_k} seeds (tune.seeds) or lower top_k")
        members = [{"checkpoint_id": c["checkpoint_id"], "path": c["path"], "node_id": c["node_id"], "trial_id": c["trial_id"], key: c[key]} for c in ranked]
        self.write(f"[{phase.name}] ensemble of {len(members)} from {init.phase}: "
                   + ", ".join(f"member {k} ← {m['checkpoint_id']} ({key} {m[key]:.1f})" for k, m in enumerate(members)))
        first = members[0]
        return {"checkpoint_id": first["checkpoint_id"], "path": first["path"], "node_id": first["node_id"],
                "selection": f"ensemble of top {init.top_k}", "members": members}

    def _given_parent(self, path: str) -> dict[str, Any]:
        """A checkpoint named by path: this run's own lineage record when it is one of this run's
        checkpoints (a phase added by the web workbench), so that the lineage links the new node
        to it; else a checkpoint from elsewhere."""
        rel = self.store.rel(path)
        for c in self.store.checkpoints():
            if c["path"] == rel:
                return {"checkpoint_id": c["checkpoint_id"], "path": c["path"], "selection": "given", "node_id": c["node_id"]}
        if not self.remote:  # another run's under the same storage path (e.g. `mprl import`): the lineage names it too
            from mprl.lineage.store import find_checkpoint_by_path

            cid = find_checkpoint_by_path(self.run_dir.parent, path)
            if cid is not None:
                return {"checkpoint_id": cid, "path": str(Path(path).resolve()), "selection": "given", "node_id": None}
        return {"checkpoint_id": None, "path": path, "selection": "given", "node_id": None}

    def _run_node(self, phase: Any, ordinal: int, node_id: str, parent: dict[str, Any] | None, resume: bool, branched: bool) -> None:
        entry = get_algorithm(phase.algorithm)
        budget_key = BUDGET_KEYS[phase.budget_unit]
        refs = reference_scores_for(phase)
        metric = phase.tune.metric if (refs or phase.tune.metric != "normalized_score") else "evaluation_return"
        if metric != phase.tune.metric:
            self.write(f"[{node_id}] no reference scores for {phase.env}: selecting checkpoints by evaluation_return")
        init_path = None
        if parent is not None:
            init_path = str(self.store.abs(parent["path"])) if parent.get("checkpoint_id") else parent["path"]
        regime = self._regime(phase, node_id, parent, init_path) if parent is not None else None
        cfg = phase_config(phase, init_path, refs)
        if parent is not None and parent.get("members"):  # member k from checkpoint k (init_checkpoint is the first)
            cfg.init_checkpoints = [str(self.store.abs(m["path"])) for m in parent["members"]]
        for key, value in ((regime or {}).get("intervention") or {}).get("applied", {}).items():
            setattr(cfg, key, value)  # regime: auto — the family's settings (the phase's own win: not in `applied`)
        if self.spec.ray.check_resources:  # launches that bypass the driver's check (workbench, serve)
            check_phase_resources(phase, cfg)
        budget_value = phase.budget_value
        charged = int(parent.get("charge_env_steps") or 0) if parent else 0
        if regime and regime["charged"]:
            charged += regime["env_steps"]
        if charged and phase.budget_unit == "env_steps":  # the validation's (and a charged diagnosis's) env steps count against this phase
            budget_value = phase.budget_value - charged
            if budget_value <= 0:
                raise MprlError(f"Phase '{phase.name}': its validation and regime diagnosis spent {charged:,} env steps, all of its budget of "
                                f"{phase.budget_value:,}; raise the budget, lower init_from.episodes / regime.episodes, or write charge: false")
            cfg.budget_env_steps = budget_value
            self.write(f"[{node_id}] budget {phase.budget_value:,} − {charged:,} validation env steps = {budget_value:,} env steps")
        param_space = cfg.to_dict()
        branch = None
        if parent is not None and parent.get("node_id") and (branched or parent["selection"] == "given"):
            branch = f"{parent['node_id']} {parent['selection'] if branched else parent['checkpoint_id']}"
        node = {
            "node_id": node_id, "run_id": self.run_id, "phase": phase.name, "ordinal": ordinal, "branch": branch,
            "parent_checkpoint_id": parent.get("checkpoint_id") if parent else None, "algorithm": phase.algorithm,
            "paradigm": phase.resolved_paradigm, "env": phase.env, "dataset": phase.dataset_id, "budget_unit": phase.budget_unit,
            "budget_value": budget_value, "axis": AXES[phase.budget_unit],
            "config_hash": config_hash({**param_space, "sweep": phase.sweep, "seeds": phase.tune.seeds}),
            "experiment_path": node_id, "status": "running", "started_at": None if resume else time.time(),
            "regime_json": json.dumps(regime, allow_nan=False) if regime else None,
        }
        if parent is not None and parent.get("members"):  # every member's checkpoint is a parent (member 0 is parent_checkpoint_id)
            node["parents"] = [(m["checkpoint_id"], f"ensemble member {k}") for k, m in enumerate(parent["members"])]
        self.store.upsert_node(node)
        self._sync_lineage()
        self.nodes[node_id] = node
        where = f", initialised from {parent.get('checkpoint_id') or init_path} ({parent['selection']})" if parent else ""
        if parent is not None and parent.get("members"):
            where = f", initialised from {', '.join(m['checkpoint_id'] for m in parent['members'])} ({parent['selection']})"
        self.write(f"[{node_id}] {phase.algorithm} ({phase.resolved_paradigm}) on {phase.env}{where}")
        try:
            if init_path:
                self._preflight(node, init_path, cfg, phase.algorithm, parent)
            results = self._fit(phase, node_id, cfg, param_space, metric, budget_key, resume)
            result = self._finish_node(phase, node, results, metric, budget_key)
        except BaseException as e:
            self.store.set_node_status(node_id, "failed", str(e) if isinstance(e, MprlError) else f"{type(e).__name__}: {e}")
            raise
        finally:
            if self.remote and (self.run_dir / node_id).is_dir():  # sweep and transfer reports
                self._upload(node_id)
                self.write(f"[{node_id}] reports uploaded to {storage.join(self.location, node_id)}/")
        self.store.set_node_status(node_id, "succeeded", result=result)
        self._sync_lineage()

    # ---- the regime of (π0, D) at the start of a warm-started phase (mprl.regime)
    def _regime(self, phase: Any, node_id: str, parent: dict[str, Any], init_path: str) -> dict[str, Any] | None:
        """Diagnose the checkpoint this node starts from against its data (`regime:`; a resumed
        node reuses its record, so its trials keep their settings) and, with `regime: auto` or a
        family, the intervention settings its trials get. None: not diagnosed."""
        from mprl.regime import intervention, probe

        settings = phase.regime
        if settings.mode == "off" or phase.resolved_paradigm == "offline":
            return None
        existing = self.store.node(node_id)
        if existing is not None and existing.get("regime_json"):
            self.write(f"[{node_id}] regime diagnosis recorded in an earlier attempt; kept")
            return json.loads(existing["regime_json"])
        dataset_id, source = phase.dataset_id, "the phase's dataset"
        parent_node = self.store.node(parent["node_id"]) if parent.get("node_id") else None
        if dataset_id is None and parent_node is not None and parent_node["dataset"]:
            dataset_id, source = parent_node["dataset"], f"the dataset of {parent_node['node_id']}, which it starts from"
        if dataset_id is None:
            if settings.applies:  # the spec refuses this; a checkpoint's run may have lost its record
                raise MprlError(f"Phase '{phase.name}': regime: {settings.mode} has no data to compare π0 with; give the phase a dataset")
            self.write(f"[{node_id}] no regime diagnosis: neither the phase nor the checkpoint it starts from has a known dataset")
            return None
        self.write(f"[{node_id}] regime diagnosis: π0 ({parent.get('checkpoint_id') or init_path}) over {settings.episodes} episodes vs {dataset_id}")
        try:
            d = probe(init_path, dataset_id, env=phase.env, episodes=settings.episodes, seed=settings.seed, margin=settings.margin, alpha=settings.alpha)
        except MprlError as e:  # e.g. a dataset of one episode: a diagnosis that only records never stops the run
            if settings.applies:
                raise MprlError(f"Phase '{phase.name}': regime: {settings.mode} cannot diagnose its start: {e}") from e
            self.write(f"[{node_id}] no regime diagnosis: {e}")
            return None
        steps = int(d.extra["env_steps"])
        charged = settings.charge and phase.budget_unit == "env_steps"
        record: dict[str, Any] = {
            "mode": settings.mode, "checkpoint_id": parent.get("checkpoint_id"), "checkpoint": init_path, "dataset": dataset_id,
            "data_from": source, "episodes": settings.episodes, "env_steps": steps, "charged": charged,
            "regime": d.regime, "family": d.family, "summary": d.summary(), "diagnosis": _finite(d.to_dict()),
        }
        self.write(f"[{node_id}] regime {d.summary()} ({steps:,} env steps{', charged to the budget' if charged else ', not charged'})")
        if settings.applies:
            written: dict[str, Any] = dict(phase.config)
            points = phase.sweep if isinstance(phase.sweep, list) else [phase.sweep]
            written.update({k: "swept" for point in points for k in point if k != "label" and k not in written})
            chosen = intervention(settings.mode, d, phase.budget_value, written, phase.resolved_paradigm)
            refused = phase.entry.settings.problems({**phase.config, **chosen.applied}, phase.resolved_paradigm)
            if refused:  # the spec checks each family's settings alone; with the phase's own they must agree too
                raise MprlError(f"Phase '{phase.name}': regime: {settings.mode} chose {chosen.summary()}, which the phase's settings refuse: "
                                f"{refused[0][1]}. Write the family's settings yourself, or regime: diagnose")
            record["intervention"] = _finite(chosen.to_dict())
            self.write(f"[{node_id}] {chosen.why}; settings: {chosen.summary()}")
        return record

    # ---- offline RL as an online subroutine: datasets from phases, validated choices
    def _phase_dataset(self, phase: Any, nodes_of: dict[str, list[str]]) -> None:
        """`dataset: {from: ...}`: a Minari dataset of what the source phases collected (the replay in
        each source node's selected checkpoint), built once, recorded in the lineage with its source."""
        from mprl.datasets.from_phase import build_from_phases, take_label

        ref = phase.dataset
        sources = []
        for name in ref.from_phases:
            for node_id in nodes_of[name]:
                selected = self.store.checkpoints(node_id, selected_only=True)
                if not selected:
                    raise MprlError(f"Phase '{phase.name}': dataset from '{name}': node {node_id} has no selected checkpoint")
                sources.append((node_id, str(self.store.abs(selected[0]["path"]))))
        tag = "+".join(ref.from_phases)
        held = f"-h{round(ref.held_out * 100)}s{ref.seed}" if ref.held_out else ""
        namespace = f"mprl-runs/{self.run_id}"
        dataset_id = f"{namespace}/{tag}-{take_label(ref.take)}{held}-v0"
        held_out_id = f"{namespace}/{tag}-heldout{held[2:]}-v0" if ref.held_out else None
        meta = build_from_phases(dataset_id, sources, phase.env, ref.take, ref.held_out, ref.seed, self.run_id,
                                 held_out_id=held_out_id, write=lambda line: self.write(f"[{phase.name}] {line}"))
        ref.id = dataset_id
        self.store.record_dataset(dataset_id, phase.name, {**meta, "held_out_dataset": meta.get("held_out_dataset")})
        self._sync_lineage()

    def _chosen_parent(self, phase: Any, nodes_of: dict[str, list[str]]) -> dict[str, Any]:
        """`init_from: {best_of: [...], keep: PAUSED, validation}`: score the candidates, record the
        scores and the choice, and start from the winner (a resumed run reuses its recorded choice)."""
        from mprl.pipeline import choose

        init = phase.init_from
        recorded = next((s for s in self.store.selections() if s["node_id"] == phase.name), None)
        if recorded is not None and recorded["chosen_checkpoint_id"]:
            c = self.store.checkpoint(recorded["chosen_checkpoint_id"])
            self.write(f"[{phase.name}] validated choice recorded in an earlier attempt: {c['checkpoint_id']}")
            return {"checkpoint_id": c["checkpoint_id"], "path": c["path"], "node_id": c["node_id"],
                    "selection": f"chosen ({recorded['validation']})", "charge_env_steps": recorded["env_steps"] if init.charge else 0}
        candidates = choose.candidate_checkpoints(self.store, init, nodes_of)
        resolve = lambda p: str(self.store.abs(p))  # noqa: E731
        self.write(f"[{phase.name}] choosing the start among {len(candidates)} checkpoint(s), validation: {init.validation}")
        steps = 0
        if init.validation == "online":
            steps = choose.online_scores(candidates, resolve, phase.env, init.episodes, init.seed, self.write)
        elif init.validation == "offline":
            held_out = next(self.spec.phase(n).dataset for n in init.best_of)
            dataset_id = next(d["held_out_dataset"] for d in self.store.datasets() if d["dataset_id"] == held_out.id)
            choose.offline_scores(candidates, resolve, dataset_id, init.fqe_updates, init.seed, self.write)
        best = choose.choose(candidates)
        self.store.record_selection(phase.name, init.validation, candidates, best["checkpoint_id"], steps)
        self._sync_lineage()
        why = f"score {best['score']:.2f}" if best.get("score") is not None else "unvalidated"
        self.write(f"[{phase.name}] chosen: {best['checkpoint_id']} {best['label']} ({why}; {steps:,} validation env steps)")
        return {"checkpoint_id": best["checkpoint_id"], "path": best["path"], "node_id": best["node_id"],
                "selection": f"chosen ({init.validation})", "charge_env_steps": steps if init.charge else 0}

    def _preflight(self, node: dict[str, Any], init_path: str, cfg: Any, algorithm: str, parent: dict[str, Any]) -> None:
        from mprl.transfer import one_line, preflight

        report_path = self.run_dir / node["node_id"] / "transfer_report.json"
        if parent.get("members"):
            self._preflight_ensemble(node, cfg, algorithm, parent, report_path)
            return
        try:
            report = preflight(init_path, cfg, algorithm, report_path)
        except CheckpointError as e:
            report = getattr(e, "report", None)
            if report is not None:
                self.store.record_transfer(node["node_id"], parent.get("checkpoint_id"), init_path, algorithm, "impossible", report)
            raise
        line = one_line(report)
        self.store.record_transfer(node["node_id"], parent.get("checkpoint_id"), init_path, algorithm, line.removeprefix("transfer: "), report.to_dict())
        self.write(f"[{node['node_id']}] {line} (report: {storage.join(self.location, node['node_id'], 'transfer_report.json')})")

    def _preflight_ensemble(self, node: dict[str, Any], cfg: Any, algorithm: str, parent: dict[str, Any], report_path: Path) -> None:
        """The ensemble's transfer check (mprl.transfer.preflight_ensemble): one record for the node, naming every member's checkpoint."""
        from mprl.transfer import one_line, preflight_ensemble

        members = parent["members"]
        paths, ids = [str(self.store.abs(m["path"])) for m in members], [m["checkpoint_id"] for m in members]
        try:
            report = preflight_ensemble(paths, cfg, algorithm, labels=ids, report_path=report_path)
        except CheckpointError as e:
            report = getattr(e, "report", None)
            if report is not None:
                self.store.record_transfer(node["node_id"], ids[0], paths[0], algorithm, "impossible", report)
            raise
        line = one_line(report)
        self.store.record_transfer(node["node_id"], ids[0], paths[0], algorithm, line.removeprefix("transfer: "), report)
        self.write(f"[{node['node_id']}] {line} (report: {storage.join(self.location, node['node_id'], 'transfer_report.json')})")

    def _fit(self, phase: Any, node_id: str, cfg: Any, param_space: dict[str, Any], metric: str, budget_key: str, resume: bool) -> Any:
        exp_path = storage.join(self.location, node_id)
        space = dict(param_space)
        space["seed"] = tune.grid_search(list(phase.tune.seeds))
        if phase.sweep and not search.is_search(phase):
            space["sweep_point"] = tune.grid_search([{**p, "label": sweep_label(p)} for p in phase.sweep])
        space, searching = self._search_config(phase, space, metric, budget_key, node_id)
        if resume and tune.Tuner.can_restore(exp_path):
            self.write(f"[{node_id}] resuming its Tune experiment from {exp_path}")
            # tuner.pkl holds no param space: trials not yet created when the run stopped (the stop can
            # come between Tune's first experiment_state and its first trial) need it again, and a
            # search needs its object refs
            tuner = tune.Tuner.restore(exp_path, trainable=cfg.algo_class, resume_unfinished=True, resume_errored=True, param_space=space)
        else:
            if any(name.startswith("experiment_state") for name in storage.list_names(exp_path)):
                aside = storage.join(self.location, f"{node_id}.abandoned-{int(time.time())}")
                storage.move(exp_path, aside)  # an unrestorable attempt: kept for inspection, never mixed in
                self.write(f"[{node_id}] an unrestorable earlier attempt moved to {aside}")
            tuner = tune.Tuner(
                cfg.algo_class,
                param_space=space,
                tune_config=tune.TuneConfig(max_concurrent_trials=phase.tune.max_concurrent_trials, **searching),
                run_config=self._run_config(phase, node_id, node_id, metric, budget_key),
            )
        self.fit_start[node_id] = time.time()
        with quiet_tune():
            results = tuner.fit()
        errors = [r.error for r in results if r.error is not None]
        if errors:
            raise MprlError(f"Phase '{phase.name}' ({node_id}): {len(errors)} trial(s) failed: {errors[0]}. Logs: {exp_path}")
        if resume:
            self._abandon_lost_trials(node_id, results)
        if search.is_search(phase):
            if node_id in self.handover_from:
                self._record_handovers(phase, node_id, results, metric, budget_key)
            rerun = self._rerun_best(phase, node_id, cfg, metric, budget_key, resume, results) if phase.tune.rerun_best else None
            search.write_search_report(results, phase, metric, budget_key, self.run_dir / node_id, self.write, rerun=rerun)
            return [*results, *(rerun or [])]
        if phase.sweep:
            write_sweep_report(results, phase, metric, budget_key, self.run_dir / node_id, self.write)
        return results

    def _run_config(self, phase: Any, node_id: str, name: str, metric: str, budget_key: str) -> Any:
        """The RunConfig of a node's Tune experiment `name` (its trials are recorded under `node_id`)."""
        stop = phase.stop
        return tune.RunConfig(
            name=name,
            storage_path=self.location,
            stop=PhaseStopper(stop.metric or metric, phase.tune.mode, stop.score, stop.plateau, stop.min_delta),
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=1,
                checkpoint_at_end=True,
                num_to_keep=phase.tune.checkpoint_num_to_keep,
                checkpoint_score_attribute=metric if phase.tune.checkpoint_num_to_keep else None,
                checkpoint_score_order=phase.tune.mode,
            ),
            failure_config=tune.FailureConfig(max_failures=phase.tune.max_failures),
            callbacks=[LineageCallback(node_id, budget_key, phase.budget_value),
                       *tracking_callbacks(self.spec, phase, self.run_id, self.location, self.run_dir, node_id)],
            verbose=0,
        )

    # ---- searches (mprl.search): distributions, search algorithms, early stopping, the best re-run
    def _search_config(self, phase: Any, param_space: dict[str, Any], metric: str, budget_key: str, node_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The param space and the TuneConfig arguments of a search phase (and a trial scheduler
        for any phase that asks for one)."""
        if not search.is_search(phase):
            return param_space, {"scheduler": search.trial_scheduler(phase, metric, budget_key)}
        handover = self._handover_lookup(node_id)
        setup = search.search_setup(phase, metric, budget_key, seed=self.spec.seed, handover=handover)
        param_space = {**param_space, "sweep_point": search.sweep_point_space(phase, handover)}
        if setup["seed"] is None:  # the searcher gives each repeat of a point its seed
            param_space.pop("seed", None)
        else:
            param_space["seed"] = setup["seed"]
        return param_space, {k: setup[k] for k in ("search_alg", "scheduler", "num_samples")}

    def _abandon_lost_trials(self, node_id: str, results: Any) -> None:
        """Trials that started after Tune's last experiment-state save (it saves at most every
        10 s) are not in the restored experiment: Tune never continues them (a searcher suggests
        new points instead), so the lineage marks them `abandoned` rather than running forever."""
        kept = {str(r.metrics.get("trial_id") or _trial_id_from_path(r.path)) for r in results}
        for t in self.store.trials(node_id):
            if t["status"] == "running" and t["trial_id"] not in kept and not (t["sweep_label"] or "").startswith("best: "):
                self.store.record_trial(t["trial_id"], node_id, t["seed"], t["sweep_label"], "abandoned", None,
                                        error="started after Tune's last experiment-state save before the interruption; not restored")

    def _handover_parent(self, source: str) -> dict[str, Any]:
        """The parent of a node that searches its hand-over point: the node it starts from (its
        last checkpoint stands for the transfer check; every trial gets its own checkpoint)."""
        ckpts = self.store.checkpoints(source)
        if not ckpts:
            raise MprlError(f"[{source}] has no checkpoint to hand over")
        node = self.store.node(source)
        last = max(ckpts, key=lambda c: c[node["axis"]] or 0)
        return {"checkpoint_id": None, "path": str(self.store.abs(last["path"])), "selection": "handover search",
                "node_id": source, "handover_from": source}

    def _handover_lookup(self, node_id: str) -> search.HandoverLookup | None:
        source = self.handover_from.get(node_id)
        if source is None:
            return None
        node, ckpts = self.store.node(source), self.store.checkpoints(source)
        metric = "normalized_score" if all(c["normalized_score"] is not None for c in ckpts) else "evaluation_return"
        mode = self.spec.phase(node["phase"]).tune.mode
        return search.HandoverLookup.from_checkpoints(ckpts, node["budget_value"], node["axis"], metric, mode,
                                                      resolve=lambda p: str(self.store.abs(p)))

    def _record_handovers(self, phase: Any, node_id: str, results: Any, metric: str, budget_key: str) -> None:
        """The checkpoints a hand-over search started from: selected in the lineage ('handover
        search: N trial(s)'); the node hangs under the one its best configuration started from."""
        from collections import Counter

        from mprl.lineage import checkpoint_id

        used = Counter((r.config.get("sweep_point") or {}).get("init_checkpoint") for r in results)
        ids = {}
        for path, n in used.items():
            cid = checkpoint_id(self.run_id, self.store.rel(path)) if path else None
            if cid and self.store.checkpoint(cid):
                self.store.mark_selected(cid, f"handover search: {n} trial(s)")
                ids[path] = cid
        best = search.best_point(search.outcomes(results, phase, metric, budget_key), phase.tune.mode)
        start = next(((r.config.get("sweep_point") or {}).get("init_checkpoint") for r in results
                      if best and search.trial_label(r.config, list(search.searched(phase))) == best[0]), None)
        if start in ids:
            self.nodes[node_id] = {**self.nodes[node_id], "parent_checkpoint_id": ids[start]}
            self.store.upsert_node(self.nodes[node_id])

    def _rerun_best(self, phase: Any, node_id: str, cfg: Any, metric: str, budget_key: str, resume: bool, results: Any) -> Any:
        """`rerun_best: {seeds: N}`: the search's best configuration (see `search.best_point`) run
        again on new seeds, as a second Tune experiment `<node>-rerun` of the same node."""
        name = f"{node_id}-rerun"
        exp_path = storage.join(self.location, name)
        best = search.best_point(search.outcomes(results, phase, metric, budget_key), phase.tune.mode)
        if best is None:
            self.write(f"[{node_id}] no trial reported {metric}: nothing to re-run")
            return None
        label, values, _ = best
        seeds = list(phase.tune.rerun_best.seeds)
        constants = search.split_space(phase.sweep)[1]
        point = {**constants, **values, "label": f"best: {label}"}
        if search.HANDOVER in values and (handover := self._handover_lookup(node_id)) is not None:
            point["init_checkpoint"] = handover.path(values[search.HANDOVER])
        space = {**cfg.to_dict(), "seed": tune.grid_search(seeds), "sweep_point": point}
        if resume and tune.Tuner.can_restore(exp_path):
            self.write(f"[{node_id}] resuming the re-run of the best configuration from {exp_path}")
            tuner = tune.Tuner.restore(exp_path, trainable=cfg.algo_class, resume_unfinished=True, resume_errored=True, param_space=space)
        else:
            self.write(f"[{node_id}] re-running the best configuration ({label}) on seeds {', '.join(map(str, seeds))}")
            tuner = tune.Tuner(cfg.algo_class, param_space=space,
                               tune_config=tune.TuneConfig(max_concurrent_trials=phase.tune.max_concurrent_trials),
                               run_config=self._run_config(phase, node_id, name, metric, budget_key))
        with quiet_tune():
            rerun = tuner.fit()
        errors = [r.error for r in rerun if r.error is not None]
        if errors:
            raise MprlError(f"Phase '{phase.name}' ({node_id}): {len(errors)} re-run trial(s) failed: {errors[0]}. Logs: {exp_path}")
        return rerun

    def _finish_node(self, phase: Any, node: dict[str, Any], results: Any, metric: str, budget_key: str) -> dict[str, Any]:
        node_id = node["node_id"]
        candidates: list[tuple[str, dict[str, Any]]] = []
        ids: dict[str, str] = {}
        trial_of: dict[str, Any] = {}
        for r in results:
            trial_id = r.metrics.get("trial_id") or _trial_id_from_path(r.path)
            for ckpt, m in r.best_checkpoints or []:
                m = {**m, "trial_id": m.get("trial_id") or trial_id}
                ids[ckpt.path] = self.store.record_checkpoint(run_id=self.run_id, node=node, trial_id=m["trial_id"], path=ckpt.path, metrics=m)
                candidates.append((ckpt.path, m))
                trial_of[ckpt.path] = r
        if phase.tune.checkpoint_num_to_keep:  # only then does Tune delete checkpoints; they leave the lineage
            for c in self.store.checkpoints(node_id):
                if not storage.exists(self.store.abs(c["path"])):
                    self.store.delete_checkpoint(c["checkpoint_id"])
        chosen = select_checkpoints(candidates, phase, metric, budget_key)
        metrics_of = dict(candidates)
        for path, label in chosen:
            cid = ids[path]
            self.store.mark_selected(cid, label)
            if self.spec.videos.selected:
                self._video(cid, path, phase.env)
            self.write(f"[{node_id}] selected {cid} ({label}): {metric} {metrics_of[path][metric]:.1f} at {metrics_of[path].get(budget_key, 0):,} {phase.budget_unit.replace('_', ' ')}")
        best_path, _ = chosen[0]
        m = metrics_of[best_path]
        trial = trial_of[best_path]
        parent_ck = self.store.checkpoint(node["parent_checkpoint_id"]) if node.get("parent_checkpoint_id") else None
        parent_node = parent_ck["node_id"] if parent_ck else None  # None too for another run's checkpoint
        transition = None
        if parent_node in self.last_trial_end and node_id in self.first_step_at and node_id in self.trial_start:
            end = self.last_trial_end[parent_node]
            transition = {  # from the end of the parent phase to this phase's first training step
                "total_s": self.first_step_at[node_id] - end,
                "handoff_s": self.fit_start[node_id] - end,  # selection, lineage, transfer check, Tune set-up
                "trial_start_s": self.trial_start[node_id] - self.fit_start[node_id],  # Tune → trial actor started
                "setup_s": self.first_step_at[node_id] - self.trial_start[node_id],  # algorithm build, warm start, first eval
            }
        result = PhaseResult(
            phase=node_id,
            algorithm=phase.algorithm,
            paradigm=node["paradigm"],
            updates=int(trial.metrics.get("num_updates_lifetime", 0)),
            env_steps=int(trial.metrics.get("num_env_steps_lifetime", 0)),
            checkpoint_at=int(m.get(budget_key, 0)),
            evaluation_return=m.get("evaluation_return"),
            normalized_score=m.get("normalized_score"),
            initial_return=m.get("initial_evaluation_return"),
            checkpoint=self._located(best_path),
            checkpoint_id=ids[best_path],
            trials=len(results),
            metrics={k: v for k, v in m.items() if isinstance(v, (int, float, str, bool))},
        )
        return {**asdict(result), "selected": [label for _, label in chosen], "transition": transition}

    # ---- callbacks (Tune's thread)
    def on_trial(self, node_id: str, trial: Any, status: str) -> None:
        cfg = trial.config
        detail = None
        if status == "succeeded":  # or stopped before its budget (early stopping, a stop rule)
            status, detail = search.trial_status(trial)
        point = cfg.get("sweep_point") if isinstance(cfg.get("sweep_point"), dict) else None
        self.store.record_trial(trial.trial_id, node_id, cfg.get("seed"), search.trial_label(cfg), status, trial.local_path,
                                config=point, error=detail)
        if status == "running":
            self.trial_start.setdefault(node_id, time.time())
        if status == "succeeded":
            self.last_trial_end[node_id] = time.time()

    def on_result(self, node_id: str, trial: Any, result: dict[str, Any]) -> None:
        if node_id not in self.first_step_at:  # when the first training iteration of this node began
            self.first_step_at[node_id] = time.time() - float(result.get("time_this_iter_s", 0.0))
        self.store.record_metrics(trial.trial_id, node_id, [result])
        self._collect_videos()
        self._sync_lineage(every=LINEAGE_SYNC_S)

    def on_checkpoint(self, node_id: str, trial: Any, path: str) -> None:
        node = self.nodes.get(node_id)
        if node is None:
            return
        metrics = {**(trial.last_result or {}), "trial_id": trial.trial_id}
        cid = self.store.record_checkpoint(run_id=self.run_id, node=node, trial_id=trial.trial_id, path=path, metrics=metrics)
        every = self.spec.videos.every
        n = self.checkpoint_counts[trial.trial_id] = self.checkpoint_counts.get(trial.trial_id, 0) + 1
        if every and n % every == 0:
            self._video(cid, path, node["env"])

    # ---- videos: background Ray tasks, recorded when done
    def _video(self, cid: str, path: str, env: str) -> None:
        import ray

        if any(c == cid for _, c in self.videos) or self.store.videos(cid):
            return
        path = self._located(path)
        out = storage.join(self.location, "videos", f"{cid}.mp4")
        task = ray.remote(_record_video).options(num_cpus=self.spec.videos.num_cpus)
        self.videos.append((task.remote(path, out, env, self.spec.videos.steps), cid))
        self.video_jobs[cid] = {"checkpoint_id": cid, "checkpoint": path, "out": out, "env": env, "steps": self.spec.videos.steps}

    def _collect_videos(self, timeout: float = 0.0) -> None:
        import ray

        if not self.videos:
            return
        refs = [r for r, _ in self.videos]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for ref in ready:
            cid = next(c for r, c in self.videos if r == ref)
            self.videos = [(r, c) for r, c in self.videos if r != ref]
            try:
                v = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - a failed video never fails a run
                self.write(f"video of {cid} failed: {e}")
                continue
            self.store.record_video(cid, v["path"], env=v.get("env"), steps=v.get("steps"), episode_return=v.get("episode_return"), seconds=v.get("seconds"), source="training")
            self.write(f"video of {cid}: {v['path']} ({v.get('seconds', 0):.1f}s to render)")
            self._sync_lineage(every=LINEAGE_SYNC_S)

    def _finish_videos(self, timeout: float) -> None:
        if self.videos:
            self.write(f"waiting for {len(self.videos)} video(s)")
        self._collect_videos(timeout=timeout)

    def _pending_videos(self) -> list[dict[str, Any]]:
        """The videos still rendering at the end of the run, as jobs a background process can redo."""
        self._collect_videos()
        return [dict(self.video_jobs[cid]) for _, cid in self.videos]

    def finish_videos(self, timeout: float = 600.0) -> int:
        """Wait for the videos still rendering and record them (the driver has gone: this
        actor, detached on a cluster, is still the lineage's writer); then end this actor."""
        import ray

        self._collect_videos(timeout=timeout)
        left = len(self.videos)
        ray.actor.exit_actor()
        return left


def _finite(value: Any) -> Any:
    """JSON without NaN/Infinity (a browser cannot parse them): non-finite numbers become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _trial_id_from_path(path: str) -> str:
    """Tune names trial folders '<trainable>_<trial id>_<n>_<params>_<date>'."""
    match = re.search(r"_([0-9a-f]{5}_\d{5})_", Path(path).name)
    return match.group(1) if match else Path(path).name


def _record_video(checkpoint: str, out: str, env: str, steps: int) -> dict[str, Any]:
    """Render on whichever node runs the task; a video for remote storage is uploaded there."""
    import tempfile

    os.environ.setdefault("MUJOCO_GL", "egl")
    from mprl.video import record_video

    if not storage.is_uri(out):
        return record_video(checkpoint, out, env, steps=steps)
    with tempfile.TemporaryDirectory(prefix="mprl-video-") as tmp:
        v = record_video(checkpoint, Path(tmp) / Path(storage.fs_path(out)).name, env, steps=steps)
        storage.upload(v["path"], out)
    return {**v, "path": out}
