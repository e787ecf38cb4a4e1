"""What the Serve app may load: runs, checkpoints and videos registered in the lineage.

An HTTP request names a run id, a checkpoint id (`ck-…`) or a video id (`vid-…`), never a
path; ids are looked up here and only paths the lineage recorded are ever opened. The
index is rebuilt when an id is not found (new checkpoints appear while a run trains), at
most once a second, so a stream of unknown ids cannot make the server rescan constantly;
the Serve app looks ids up in memory (`cached`) on its event loop and runs rescans, which
open every run's SQLite file, in a worker thread.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from mprl.lineage import LineageError, LineageStore, list_runs

RESCAN_INTERVAL_S = 1.0


def clean(obj: Any) -> Any:
    """JSON-safe: NaN and ±inf become null (JSON has no spelling for them)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


class Catalog:
    """Index of run id → folder, checkpoint id → (run folder, record), video id → (run folder, record)."""

    def __init__(self, storage_path: str | Path) -> None:
        self.storage = Path(storage_path)
        self._lock = threading.Lock()
        self._runs: dict[str, Path] = {}
        self._checkpoints: dict[str, tuple[Path, dict[str, Any]]] = {}
        self._videos: dict[str, tuple[Path, dict[str, Any]]] = {}
        self._scanned = 0.0
        self.rescans = 0  # how many times the index was rebuilt (the app's /stats reports it)
        self.rescan(force=True)

    def rescan(self, force: bool = False) -> None:
        with self._lock:
            if not force and time.monotonic() - self._scanned < RESCAN_INTERVAL_S:
                return
            self.rescans += 1
            runs, cks, vids = {}, {}, {}
            for r in list_runs(self.storage):
                run_dir = Path(r["run_dir"])
                runs[r["run_id"]] = run_dir
                try:
                    with LineageStore(run_dir, readonly=True) as store:
                        for c in store.checkpoints():
                            cks[c["checkpoint_id"]] = (run_dir, c)
                        for v in store.videos():
                            vids[v["video_id"]] = (run_dir, v)
                except (LineageError, sqlite3.Error):
                    continue
            self._runs, self._checkpoints, self._videos = runs, cks, vids
            self._scanned = time.monotonic()

    def _get(self, table: str, key: str) -> Any:
        found = getattr(self, table).get(key)
        if found is None:
            self.rescan()
            found = getattr(self, table).get(key)
        return found

    def cached(self, kind: str, key: str) -> Any:
        """An id looked up in the current index only ("runs", "checkpoints" or "videos"): no I/O."""
        return getattr(self, f"_{kind}").get(key)

    def due(self) -> bool:
        """Whether a rescan would run now (the rate limit allows it)."""
        return time.monotonic() - self._scanned >= RESCAN_INTERVAL_S

    def run_dir(self, run_id: str) -> Path | None:
        return self._get("_runs", run_id)

    def checkpoint(self, checkpoint_id: str) -> tuple[Path, dict[str, Any]] | None:
        return self._get("_checkpoints", checkpoint_id)

    def video(self, video_id: str) -> tuple[Path, dict[str, Any]] | None:
        found = self._get("_videos", video_id)
        if found is None:
            return None
        run_dir, row = found
        # Re-read: a video of the same id may have been re-recorded since the scan.
        with LineageStore(run_dir, readonly=True) as store:
            rows = [v for v in store.videos(row["checkpoint_id"]) if v["video_id"] == video_id]
        return (run_dir, rows[0]) if rows else found

    def runs(self) -> list[dict[str, Any]]:
        """Every run with its phases (nodes) and checkpoint count, oldest first."""
        out = []
        for r in list_runs(self.storage):
            try:
                with LineageStore(r["run_dir"], readonly=True) as store:
                    nodes = store.nodes()
                    n_ck = len(store.checkpoints())
            except (LineageError, sqlite3.Error):
                continue
            out.append({
                "run_id": r["run_id"], "name": r["name"], "status": r["status"], "error": r["error"],
                "created_at": r["created_at"], "updated_at": r["updated_at"], "code_version": r["code_version"],
                "phases": [{k: n[k] for k in ("node_id", "phase", "algorithm", "paradigm", "env", "axis", "status", "branch")} for n in nodes],
                "checkpoints": n_ck,
            })
        return out

    def policies(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Every registered checkpoint, as a policy one can `act` with."""
        self.rescan()
        out = []
        for cid, (run_dir, c) in self._checkpoints.items():
            if run_id is not None and c["run_id"] != run_id:
                continue
            out.append(policy_record(c, [v["video_id"] for _, v in self._videos.values() if v["checkpoint_id"] == cid]))
        return sorted(out, key=lambda p: (p["run_id"], p["node_id"], p["trial_id"], p["iteration"] or 0))


def policy_record(c: dict[str, Any], videos: list[str]) -> dict[str, Any]:
    keys = ("run_id", "node_id", "trial_id", "phase", "algorithm", "paradigm", "env", "dataset", "parent_checkpoint_id",
            "iteration", "num_updates", "num_env_steps", "evaluation_return", "normalized_score", "selection", "created_at")
    return {"policy_id": c["checkpoint_id"], **{k: c[k] for k in keys}, "selected": bool(c["selected"]), "videos": videos}


def lineage_graph(store: LineageStore) -> dict[str, Any]:
    """The run's lineage as a graph: datasets → phase runs → checkpoints → the phase runs they seed."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    videos: dict[str, list[str]] = {}
    for v in store.videos():
        videos.setdefault(v["checkpoint_id"], []).append(v["video_id"])
    transfers = {t["node_id"]: t for t in store.transfers()}
    datasets: set[str] = set()
    parents: dict[str, list[dict[str, Any]]] = {}
    for e in store.parents():  # an ensemble's K members, else the node's one parent
        parents.setdefault(e["node_id"], []).append(e)
    for n in store.nodes():
        nodes.append({
            "id": n["node_id"], "kind": "phase", "phase": n["phase"], "ordinal": n["ordinal"], "branch": n["branch"],
            "algorithm": n["algorithm"], "paradigm": n["paradigm"], "env": n["env"], "dataset": n["dataset"],
            "axis": n["axis"], "budget": {n["budget_unit"]: n["budget_value"]}, "status": n["status"],
            "transfer": transfers.get(n["node_id"], {}).get("summary"),
        })
        if n["dataset"]:
            if n["dataset"] not in datasets:
                datasets.add(n["dataset"])
                nodes.append({"id": f"dataset:{n['dataset']}", "kind": "dataset", "label": n["dataset"]})
            edges.append({"from": f"dataset:{n['dataset']}", "to": n["node_id"], "kind": "trains_on"})
        seeds = parents.get(n["node_id"], [])
        for e in seeds:  # an ensemble's edges carry the member index and its label
            edges.append({"from": e["checkpoint_id"], "to": n["node_id"], "kind": "initialises",
                          **({"member": e["member"], "label": e["label"] or f"member {e['member']}"} if len(seeds) > 1 else {})})
    for c in store.checkpoints():
        nodes.append({
            "id": c["checkpoint_id"], "kind": "checkpoint", "node_id": c["node_id"], "trial_id": c["trial_id"],
            "algorithm": c["algorithm"], "iteration": c["iteration"], "num_updates": c["num_updates"],
            "num_env_steps": c["num_env_steps"], "evaluation_return": c["evaluation_return"],
            "normalized_score": c["normalized_score"], "selected": bool(c["selected"]), "videos": videos.get(c["checkpoint_id"], []),
        })
        edges.append({"from": c["node_id"], "to": c["checkpoint_id"], "kind": "produced"})
    return clean({"nodes": nodes, "edges": edges})
