"""One writer per run's lineage: records from outside the phase scheduler go through it.

The Serve app (on-demand videos) and `mprl video` record videos in a run's lineage. While the
run's scheduler actor lives it is the lineage's writer, so they hand it the record
(`Scheduler.record_video`); when it does not (the run ended, or lives on a Ray cluster this
process is not connected to), they write themselves, in one `BEGIN IMMEDIATE` transaction on
a connection of their own (`LineageStore`), which queues behind any other writer on SQLite's
busy timeout. A run in object storage is never written from here (its lineage is uploaded by
its scheduler).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SCHEDULER_NAMESPACE = "mprl"  # the Ray namespace of every run's scheduler actor


def scheduler_actor_name(run_id: str) -> str:
    """The name of a run's scheduler actor, which readers use to find the run's writer."""
    return f"scheduler:{run_id}"


def live_scheduler(run_id: str) -> Any | None:
    """The run's scheduler actor if this process is connected to the Ray cluster it lives on."""
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a dependency
        return None
    if not ray.is_initialized():
        return None
    try:
        return ray.get_actor(scheduler_actor_name(run_id), namespace=SCHEDULER_NAMESPACE)
    except ValueError:
        return None


def record_video(run_dir: str | os.PathLike, run_id: str | None, checkpoint_id: str, path: str | os.PathLike, **fields: Any) -> tuple[str, str]:
    """Record a video of `checkpoint_id` in the run's lineage → (video id, who wrote it:
    "scheduler" or "direct")."""
    import ray

    from mprl.lineage.store import LineageStore

    actor = live_scheduler(run_id) if run_id else None
    if actor is not None:
        try:
            return ray.get(actor.record_video.remote(checkpoint_id, str(path), **fields), timeout=60), "scheduler"
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass  # it ended meanwhile: the lineage has no other writer now
    with LineageStore(Path(run_dir)) as store:
        return store.record_video(checkpoint_id, str(path), **fields), "direct"
