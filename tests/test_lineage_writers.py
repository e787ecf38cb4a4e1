"""One writer per run's lineage, for real: the scheduler's threads and Serve-style writers in
other processes write the same run's SQLite file at once; and a live scheduler actor takes
the records handed to it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from mprl.lineage import LineageStore

SECONDS = float(os.environ.get("MPRL_WRITERS_TEST_S", 45))
NODE = {"node_id": "online", "run_id": "r", "phase": "online", "ordinal": 0, "algorithm": "td3", "paradigm": "online", "env": "Hopper-v5",
        "budget_unit": "env_steps", "budget_value": 10**9, "status": "running"}

SERVE_WRITER = textwrap.dedent("""
    import sys, time
    from mprl.lineage.writer import record_video
    run_dir, tag, until = sys.argv[1], sys.argv[2], float(sys.argv[3])
    n = 0
    while time.time() < until:
        vid, via = record_video(run_dir, "r", "ck-shared", f"{run_dir}/videos/{tag}-{n}.mp4", env="Hopper-v5", steps=10, source="serve")
        assert via == "direct", via
        n += 1
    print(n)
""")


def test_scheduler_and_serve_write_one_run_at_once(tmp_path):
    """~45 s of the scheduler's two threads (Tune's callbacks; poll/stop) on one store and two
    Serve-style processes recording videos: no "database is locked", no lost or doubled row."""
    run_dir = tmp_path / "run"
    store = LineageStore(run_dir)
    store.create_run("r", "writers", {"phases": []}, str(tmp_path))
    store.upsert_node(NODE)
    until = time.time() + SECONDS
    env = {**os.environ}
    writers = [subprocess.Popen([sys.executable, "-c", SERVE_WRITER, str(run_dir), tag, str(until)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env) for tag in ("a", "b")]
    errors: list[BaseException] = []
    counts = {"iterations": 0, "status": 0}

    def tune_thread() -> None:  # as LineageCallback: results, checkpoints, trials, re-recorded checkpoints
        it = 0
        try:
            while time.time() < until:
                it += 1
                result = {"training_iteration": it, "num_env_steps_lifetime": it * 10, "evaluation_return": float(it)}
                store.record_trial("t0", "online", 0, None, "running", None)
                store.record_metrics("t0", "online", [result])
                store.record_checkpoint(run_id="r", node=NODE, trial_id="t0", path=str(run_dir / "online" / f"checkpoint_{it:06d}"), metrics=result)
                if it % 5 == 0:  # a rewritten folder, re-recorded with new scores
                    store.record_checkpoint(run_id="r", node=NODE, trial_id="t0", path=str(run_dir / "online" / f"checkpoint_{it:06d}"),
                                            metrics={**result, "evaluation_return": -float(it)})
            counts["iterations"] = it
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def driver_thread() -> None:  # as poll/stop/finish: statuses, node updates, reads
        n = 0
        try:
            while time.time() < until:
                n += 1
                store.set_run_status("running")
                store.set_node_status("online", "running")
                store.checkpoints("online")
                store.videos()
            counts["status"] = n
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=tune_thread), threading.Thread(target=driver_thread)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 120)
    outs = [w.communicate(timeout=SECONDS + 120) for w in writers]
    assert not errors, errors
    for w, (out, err) in zip(writers, outs):
        assert w.returncode == 0, err[-2000:]
    videos_written = sum(int(out.split()[-1]) for out, _ in outs)
    with LineageStore(run_dir, readonly=True) as ro:
        rows = ro.metrics(trial_id="t0")
        ckpts = ro.checkpoints("online")
        videos = ro.videos()
    n = counts["iterations"]
    print(f"\n{SECONDS:.0f} s: {n} iterations, {counts['status']} status updates, {videos_written} videos from 2 processes")
    assert n > 50 and videos_written > 50 and counts["status"] > 10
    assert [r["iteration"] for r in rows] == list(range(1, n + 1))  # none lost, none doubled
    assert len(ckpts) == n and len({c["path"] for c in ckpts}) == n
    assert all(c["evaluation_return"] == (-c["iteration"] if c["iteration"] % 5 == 0 else c["iteration"]) for c in ckpts)
    assert len(videos) == videos_written == len({v["path"] for v in videos})
    store.close()


def test_serve_hands_its_records_to_the_live_scheduler(ray_local, tmp_path):
    """While the run's scheduler actor lives it writes the record; after it is gone, the caller does."""
    import ray

    from mprl.lineage.writer import record_video
    from mprl.pipeline.driver import new_run_id, start_scheduler
    from mprl.spec import parse_pipeline

    spec = parse_pipeline({"name": "handoff", "storage_path": str(tmp_path), "phases": [
        {"name": "online", "algorithm": "td3", "env": "Hopper-v5", "budget": {"env_steps": 100}, "config": {"learning_starts": 50, "random_steps": 50}}]})
    run_id = new_run_id(spec.name)
    run_dir = tmp_path / run_id
    actor = start_scheduler(spec, run_id, str(run_dir))
    ray.get(actor.poll.remote(0))  # constructed: the lineage exists
    vid, via = record_video(run_dir, run_id, "ck-x", run_dir / "videos" / "a.mp4", steps=5, source="serve")
    assert via == "scheduler"
    ray.kill(actor)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            ray.get_actor(f"scheduler:{run_id}", namespace="mprl")
            time.sleep(0.5)
        except ValueError:
            break
    vid2, via2 = record_video(run_dir, run_id, "ck-x", run_dir / "videos" / "b.mp4", steps=5, source="serve")
    assert via2 == "direct"
    with LineageStore(run_dir, readonly=True) as store:
        assert {v["video_id"] for v in store.videos("ck-x")} == {vid, vid2}


@pytest.mark.parametrize("n", [3])
def test_store_connections_are_per_thread(tmp_path, n):
    """A store used from several threads gives each its own connection (none shared)."""
    store = LineageStore(tmp_path)
    seen: list[int] = []
    threads = [threading.Thread(target=lambda: seen.append(id(store.db))) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == n and id(store.db) not in seen
    store.close()
