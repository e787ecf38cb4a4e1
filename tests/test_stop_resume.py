"""Ctrl-C during a phase, then `mprl resume`, as a user runs them (the `mprl` command in its own
process, with its own local Ray): the stopped run is consistent, and after the resume the
lineage's record of every checkpoint agrees with its files, scores included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mprl.lineage import LineageStore

SPEC = """\
name: stopme
storage_path: {storage}
videos: {{selected: true, steps: 30}}
phases:
  - name: online
    algorithm: td3
    env: Hopper-v5
    budget: {{env_steps: 1500}}
    evaluation: {{interval: 150, episodes: 1, seed: 77}}
    config: {{utd: 1, random_steps: 150, learning_starts: 150, hidden: [64, 64]}}
    tune: {{seeds: [0]}}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "minari"), "MUJOCO_GL": "egl", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    # Tune saves its experiment state at most every 30 s here, so the trial resumes from an
    # earlier state than it reached, re-runs iterations and rewrites their checkpoint folders.
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "30"
    return env


def _mprl(tmp_path: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mprl.cli", *args], capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=timeout)


def _fresh_return(path: Path, episodes: int, seed: int) -> float:
    from mprl.evaluation import evaluate_policy
    from mprl.serve.policy import load_policy

    policy = load_policy(path)
    return evaluate_policy(policy.act_one, "Hopper-v5", episodes, seed).mean


def test_stop_then_resume_keeps_the_lineage_true(tmp_path):
    storage = tmp_path / "runs"
    (tmp_path / "minari").mkdir()
    spec = tmp_path / "stopme.yaml"
    spec.write_text(SPEC.format(storage=storage))
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mprl.cli", "run", str(spec)], stdout=out, stderr=subprocess.STDOUT,
                                env=_env(tmp_path), cwd=tmp_path, start_new_session=True)
    deadline = time.monotonic() + 400
    run_dir = None
    while time.monotonic() < deadline:  # until the phase has made four checkpoints
        time.sleep(1)
        assert proc.poll() is None, log.read_text()[-3000:]
        found = list(storage.glob("*/lineage.sqlite"))
        if found:
            run_dir = found[0].parent
            with LineageStore(run_dir, readonly=True) as store:
                if len(store.checkpoints("online")) >= 4:
                    break
    else:
        pytest.fail(f"the phase never made four checkpoints:\n{log.read_text()[-3000:]}")
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(timeout=120) == 2
    text = log.read_text()
    assert "mprl resume" in text and "Traceback" not in text, text[-3000:]
    assert "Token authentication" not in text  # Ray's start-up notice is filtered

    # A stopped run is consistent: run and phase both `stopped`, and a summary written.
    with LineageStore(run_dir, readonly=True) as store:
        assert store.run()["status"] == "stopped"
        assert store.node("online")["status"] == "stopped"
        before = {c["checkpoint_id"]: c["evaluation_return"] for c in store.checkpoints()}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["run_id"] == run_dir.name

    t0 = time.monotonic()
    resumed = _mprl(tmp_path, "resume", run_dir.name, "--storage-path", str(storage))
    resume_s = time.monotonic() - t0
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    out = resumed.stdout + resumed.stderr
    assert "[online] resuming its Tune experiment" in out
    assert "Token authentication" not in out
    assert "render in the background" in out  # the driver did not wait for the video

    # Every checkpoint's record agrees with its files: the metrics row of its iteration, and a
    # fresh evaluation of its weights (deterministic: same weights, same episode seeds).
    with LineageStore(run_dir, readonly=True) as store:
        assert store.run()["status"] == "succeeded" and store.node("online")["status"] == "succeeded"
        rows = {(m["trial_id"], m["iteration"]): m for m in store.metrics(node_id="online")}
        ckpts = store.checkpoints("online")
        rewritten = [c["checkpoint_id"] for c in ckpts if c["checkpoint_id"] in before and before[c["checkpoint_id"]] != c["evaluation_return"]]
        print(f"\n{len(ckpts)} checkpoints, {len(before)} recorded before the stop, {len(rewritten)} re-recorded; resume took {resume_s:.1f} s")
        for c in ckpts:
            row = rows[(c["trial_id"], c["iteration"])]
            assert c["evaluation_return"] == pytest.approx(row["evaluation_return"]), c["checkpoint_id"]
            assert c["num_env_steps"] == row["num_env_steps"]
            fresh = _fresh_return(store.abs(c["path"]), episodes=1, seed=77)
            assert fresh == pytest.approx(c["evaluation_return"], rel=1e-4, abs=1e-3), (c["checkpoint_id"], c["path"], before.get(c["checkpoint_id"]))
        (selected,) = store.checkpoints(selected_only=True)

    # The video renders after the driver has gone, and lands in the lineage.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with LineageStore(run_dir, readonly=True) as store:
            videos = store.videos(selected["checkpoint_id"])
        if videos:
            break
        time.sleep(2)
    else:
        pytest.fail(f"no video of the selected checkpoint:\n{(run_dir / 'videos' / 'background.log').read_text()[-2000:]}")
    assert (run_dir / "videos").is_dir() and store.abs(videos[0]["path"]).stat().st_size > 1000

    # Resuming a finished run: says so, starts nothing.
    t0 = time.monotonic()
    again = _mprl(tmp_path, "resume", run_dir.name, "--storage-path", str(storage), timeout=120)
    assert again.returncode == 0 and "nothing to resume" in again.stdout, again.stdout + again.stderr
    assert "resuming" not in again.stdout and time.monotonic() - t0 < 30
