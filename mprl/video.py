"""Behaviour videos and seeded rollouts of a checkpoint's deterministic policy.

Rendering is headless (`MUJOCO_GL=egl`; software EGL on machines without a GPU). With
MuJoCo's default scene a 480² frame costs 250–380 ms there, so frames are 320² with
shadows, reflections and anti-aliasing off (10–17 ms each); H.264 mp4 through
imageio-ffmpeg, `+faststart` so browsers can play it while it downloads. Files are written
under a temporary name and renamed when complete: a reader never sees half a video.

`record_video` is what the phase scheduler calls for training-time videos (in a Ray task,
so the learner never waits on it) and what `mprl video` and the Serve app call on demand.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mprl.episodes import Transition, run_episodes
from mprl.errors import MprlError

Progress = Callable[[int, int], None]  # (frames done, frames total)


def make_env(env_id: str, render: bool = False, width: int = 320, height: int = 320) -> Any:
    """A Gymnasium env (mprl's registered variants included), set up for fast rgb_array frames."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from mprl.envs import (
        make_env as _make,  # importing mprl.envs registers mprl's own variants
    )

    if not render:
        return _make(env_id)
    try:
        env = _make(env_id, render_mode="rgb_array", width=width, height=height)
    except TypeError:  # not a MuJoCo env: no width/height arguments
        env = _make(env_id, render_mode="rgb_array")
    _fast_scene(env)
    return env


def _fast_scene(env: Any) -> None:
    """Shadows, reflections and anti-aliasing off: 20× faster frames in software EGL."""
    renderer = getattr(env.unwrapped, "mujoco_renderer", None)
    if renderer is None:
        return
    import mujoco

    renderer.model.vis.quality.offsamples = 0  # read when the GL context is made, so before the first frame
    viewer = renderer._get_viewer(render_mode="rgb_array")
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0


class _Mp4:
    """An mp4 written to `<name>.part.mp4`, renamed to `path` on success, removed on failure."""

    def __init__(self, path: Path, fps: float) -> None:
        import imageio.v2 as imageio

        self.path = path
        self.tmp = path.with_name(path.stem + ".part.mp4")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = imageio.get_writer(
            str(self.tmp), fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=16, quality=None,
            ffmpeg_log_level="error", ffmpeg_params=["-preset", "veryfast", "-crf", "26", "-movflags", "+faststart"],
        )

    def append(self, frame: np.ndarray) -> None:
        self.writer.append_data(frame)

    def close(self, ok: bool) -> None:
        try:
            self.writer.close()
        finally:
            if ok:
                os.replace(self.tmp, self.path)
            else:
                self.tmp.unlink(missing_ok=True)


def _fps(env: Any) -> float:
    return float(env.metadata.get("render_fps") or 30)


def _env_of(policy: Any, env_id: str | None) -> str:
    env_id = env_id or policy.env
    if not env_id:
        raise MprlError(f"Checkpoint '{policy.checkpoint}' does not record its environment: pass one (e.g. --env HalfCheetah-v5).")
    return env_id


def check_spaces(policy: Any, env: Any, env_id: str) -> None:
    """The env must give the observations and take the actions the policy was trained on."""
    obs_shape = tuple(env.observation_space.shape or ())
    act_shape = tuple(getattr(env.action_space, "shape", None) or ())
    if obs_shape != policy.obs_shape or act_shape != policy.action_shape:
        raise MprlError(
            f"Environment '{env_id}' has observations {obs_shape} and actions {act_shape}, but the policy "
            f"was trained on {policy.env or 'an env'} with observations {policy.obs_shape} and actions "
            f"{policy.action_shape}. Use an environment (or variant) with the same spaces."
        )


def record_policy_video(policy: Any, out_path: str | Path, env_id: str | None = None, *, steps: int = 1000, seed: int = 0,
                        width: int = 320, height: int = 320, progress: Progress | None = None) -> dict[str, Any]:
    """`record_video` for an already loaded `mprl.serve.policy.Policy` (the Serve app keeps them loaded)."""
    if steps < 1:
        raise MprlError(f"A video needs at least 1 step, got {steps}.")
    env_id = _env_of(policy, env_id)
    t0 = time.perf_counter()
    env = make_env(env_id, render=True, width=width, height=height)
    out = Path(out_path)
    mp4 = None
    ok = False
    try:
        check_spaces(policy, env, env_id)
        mp4 = _Mp4(out, _fps(env))
        taken = [0]

        def step_done(_t: Transition) -> None:
            taken[0] += 1
            if progress is not None and taken[0] % 25 == 0:
                progress(taken[0], steps)

        done = run_episodes(env, policy.act_one, seeds=lambda i: seed + i, steps=steps,
                            before_step=lambda: mp4.append(env.render()), on_step=step_done)
        returns, ret = done.returns, done.partial_return
        ok = True
    finally:
        if mp4 is not None:
            mp4.close(ok)
        env.close()
    if progress is not None:
        progress(steps, steps)
    # The first complete episode's return; the partial return if no episode ended within `steps`.
    return {"path": str(out), "steps": steps, "episode_return": returns[0] if returns else ret, "seconds": time.perf_counter() - t0,
            "env": env_id, "episodes_completed": len(returns), "episode_returns": returns}


def record_video(checkpoint: str | Path, out_path: str | Path, env_id: str | None = None, *, steps: int = 1000, seed: int = 0,
                 width: int = 320, height: int = 320, progress: Progress | None = None) -> dict[str, Any]:
    """Render `steps` frames of the checkpoint's deterministic policy to an mp4 at `out_path`.

    The env is the checkpoint's own unless `env_id` names another with the same spaces (a
    variant). Episodes are reset when done (seeds seed, seed+1, ...) until `steps` frames.
    Returns {"path", "steps", "episode_return", "seconds", "env"} (+ "episode_returns" of the
    completed episodes); raises MprlError / CheckpointError with a readable message.
    """
    from mprl.serve.policy import load_policy

    t0 = time.perf_counter()
    policy = load_policy(checkpoint)
    out = record_policy_video(policy, out_path, env_id, steps=steps, seed=seed, width=width, height=height, progress=progress)
    out["seconds"] = time.perf_counter() - t0
    return out


def rollouts(policy: Any, env_id: str | None, seeds: Sequence[int], *, max_steps: int | None = None,
             video_path: str | Path | None = None, width: int = 320, height: int = 320,
             refs: tuple[float, float] | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """One deterministic episode per seed: returns, lengths, normalised scores, optionally one mp4 of them all."""
    from mprl.envs import normalized_score

    env_id = _env_of(policy, env_id)
    t0 = time.perf_counter()
    env = make_env(env_id, render=video_path is not None, width=width, height=height)
    mp4 = None
    ok = False
    returns: list[float] = []
    lengths: list[int] = []
    try:
        check_spaces(policy, env, env_id)
        limit = max_steps or int(getattr(env.spec, "max_episode_steps", None) or 1000)
        if video_path is not None:
            mp4 = _Mp4(Path(video_path), _fps(env))
        seed_list = [int(s) for s in seeds]

        def episode_done(t: Transition) -> None:
            if progress is not None and (t.terminated or t.truncated):
                progress(t.episode + 1, len(seed_list))

        done = run_episodes(env, policy.act_one, seeds=seed_list, episodes=len(seed_list), max_episode_steps=limit,
                            before_step=(lambda: mp4.append(env.render())) if mp4 is not None else None, on_step=episode_done)
        returns, lengths = done.returns, done.lengths
        ok = True
    finally:
        if mp4 is not None:
            mp4.close(ok)
        env.close()
    if refs is None:
        from mprl.envs import reference_scores

        refs = reference_scores(env_id)
    scores = [normalized_score(r, refs=refs) for r in returns] if refs else [None] * len(returns)
    mean = float(np.mean(returns)) if returns else None
    return {
        "env": env_id, "seeds": [int(s) for s in seeds], "returns": returns, "lengths": lengths,
        "normalized_scores": scores, "mean_return": mean,
        "mean_normalized_score": normalized_score(mean, refs=refs) if (refs and mean is not None) else None,
        "reference_scores": list(refs) if refs else None, "seconds": time.perf_counter() - t0,
        "video_path": str(video_path) if video_path is not None else None,
    }


def render_in_background(run_dir: str | Path, run_id: str, jobs: list[dict[str, Any]]) -> Path:
    """Render `jobs` (the scheduler's pending training videos) in a detached process that
    outlives this one, and record each in the run's lineage; returns the process's log path.

    A run's driver must not wait for its last videos (they were ~40% of a short run's wall
    time), and an embedded local Ray, with the tasks rendering them, ends with the driver.
    """
    import json
    import subprocess
    import sys

    videos = Path(run_dir) / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    spec = videos / f".pending-{os.getpid()}-{int(time.time())}.json"
    spec.write_text(json.dumps({"run_dir": str(run_dir), "run_id": run_id, "jobs": jobs}))
    log = videos / "background.log"
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    with open(log, "ab") as out:
        subprocess.Popen([sys.executable, "-m", "mprl.video", str(spec)], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env, start_new_session=True, close_fds=True)
    return log


def _render_pending(spec_file: Path) -> int:
    """The background process of `render_in_background`: render, record, remove the job file."""
    import json

    from mprl.lineage.writer import record_video as record_in_lineage

    spec = json.loads(spec_file.read_text())
    failed = 0
    for job in spec["jobs"]:
        try:
            v = record_video(job["checkpoint"], job["out"], job["env"], steps=int(job["steps"]))
            vid, _ = record_in_lineage(spec["run_dir"], spec["run_id"], job["checkpoint_id"], v["path"], env=v.get("env"), steps=v.get("steps"),
                                       episode_return=v.get("episode_return"), seconds=v.get("seconds"), source="training")
            print(f"video of {job['checkpoint_id']}: {v['path']} ({vid}, {v['seconds']:.1f}s to render)", flush=True)
        except Exception as e:  # noqa: BLE001 - one failed video never stops the others
            failed += 1
            print(f"video of {job['checkpoint_id']} failed: {type(e).__name__}: {e}", flush=True)
    spec_file.unlink(missing_ok=True)
    return 1 if failed else 0


if __name__ == "__main__":
    import sys

    sys.exit(_render_pending(Path(sys.argv[1])))
