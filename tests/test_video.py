"""Behaviour videos: `record_video` (what the scheduler and the Serve app call) and `mprl video`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_serve import ENV_ID, REPO, release_app, served_app


@pytest.fixture(scope="module")
def demo(request, ray_local, tmp_path_factory):
    """The demo run of tests/test_serve.py (these tests need no server)."""
    yield served_app(ray_local, tmp_path_factory, server=False)
    release_app(request)


def _checkpoint(demo, i: int) -> Path:
    from mprl.lineage import LineageStore

    with LineageStore(demo["run_dir"], readonly=True) as store:
        return store.abs(store.checkpoint(demo["checkpoints"][i])["path"])


def test_record_video_writes_an_mp4_of_the_requested_frames(demo, tmp_path):
    import imageio.v2 as imageio

    from mprl.video import record_video

    out = record_video(_checkpoint(demo, 0), tmp_path / "v.mp4", steps=60, seed=3, width=160, height=160)
    assert set(out) >= {"path", "steps", "episode_return", "seconds", "env"}
    assert out["env"] == ENV_ID and out["steps"] == 60 and out["path"] == str(tmp_path / "v.mp4")
    assert isinstance(out["episode_return"], float) and out["seconds"] > 0
    with imageio.get_reader(tmp_path / "v.mp4", format="FFMPEG") as reader:
        assert reader.count_frames() == 60
        frames = np.stack([reader.get_data(i) for i in (0, 30, 59)])
    assert frames.shape == (3, 160, 160, 3)
    assert frames.std() > 1.0  # a rendered scene, not a blank frame
    assert not list(tmp_path.glob("*.part.mp4"))  # the temporary file was renamed

    # Deterministic policy + seeds: the same video twice has the same episode returns.
    again = record_video(_checkpoint(demo, 0), tmp_path / "w.mp4", steps=60, seed=3, width=160, height=160)
    assert again["episode_returns"] == out["episode_returns"]


def test_record_video_refuses_an_env_of_other_spaces(demo, tmp_path):
    from mprl.errors import MprlError
    from mprl.video import record_video

    with pytest.raises(MprlError, match="same spaces"):
        record_video(_checkpoint(demo, 0), tmp_path / "x.mp4", "Hopper-v5", steps=5)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_mprl_video_by_lineage_id_records_it_in_the_lineage(demo, tmp_path):
    from mprl.lineage import LineageStore

    cid = demo["checkpoints"][2]
    out = tmp_path / "cli.mp4"
    cmd = [sys.executable, "-m", "mprl.cli", "video", cid, "-o", str(out), "--steps", "30", "--storage-path", str(demo["storage"])]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "MUJOCO_GL": "egl"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.is_file() and out.read_bytes()[4:8] == b"ftyp"
    assert "recorded in the lineage" in proc.stdout
    with LineageStore(demo["run_dir"], readonly=True) as store:
        assert any(v["source"] == "cli" and v["steps"] == 30 for v in store.videos(cid))


def test_mprl_video_of_a_missing_checkpoint_is_a_readable_error(tmp_path):
    cmd = [sys.executable, "-m", "mprl.cli", "video", str(tmp_path / "nope"), "-o", str(tmp_path / "o.mp4")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("mprl: error:") and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_sac_checkpoint_serves_its_deterministic_mean_in_env_units(ray_local, tmp_path):
    """mprl's SAC module (squashed Gaussian): tanh of the mean, mapped to the action bounds, as evaluation does."""
    import torch

    from algorithms.sac import SACConfig
    from mprl.evaluation import deterministic_actions
    from mprl.serve.policy import load_policy
    from mprl.video import record_video

    algo = (SACConfig().environment(ENV_ID)
            .training(env_steps_per_iteration=100, eval_episodes=1, random_steps=50, learning_starts=50, hidden=[32, 32])
            .build_algo())
    try:
        algo.train()
        path = algo.save(str(tmp_path / "sac")).checkpoint.path
        obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
        module = algo.env_runner.module
        want = deterministic_actions(module, torch.as_tensor(obs), algo.config.normalize_actions, algo.config.clip_actions)
        with torch.no_grad():
            mean, _ = module.actor.dist_params(module.normalizer(torch.as_tensor(obs)))
        np.testing.assert_allclose(want, (module.actor.action_bias + module.actor.action_scale * torch.tanh(mean)).numpy(), rtol=1e-6)
    finally:
        algo.stop()
    policy = load_policy(path)
    assert policy.module_class == "SACRLModule" and not policy.normalize_actions
    np.testing.assert_allclose(policy.act(obs), want, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(policy.act(obs * 100)) <= 3.0)  # inside InvertedPendulum's bounds
    assert record_video(path, tmp_path / "sac.mp4", steps=20)["steps"] == 20
