"""The quick-start pipeline end to end on a real local Ray with Tune, at a small budget."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mprl.pipeline.driver import run_pipeline
from mprl.pipeline.phases import phase_config, reference_scores_for
from mprl.spec import load_pipeline, parse_pipeline

QUICKSTART = Path(__file__).parents[1] / "tune_configs" / "quickstart.yaml"


def small_quickstart(storage: Path) -> dict:
    """The shipped quick start with every budget cut down to seconds."""
    data = load_pipeline(QUICKSTART).to_dict()
    data["storage_path"] = str(storage)
    off, on = data["phases"]
    off["dataset"]["build"]["size"] = 4000
    off["budget"] = {"updates": 600}
    on["budget"] = {"env_steps": 600}
    for p in (off, on):
        p["evaluation"] = {"interval": 300, "episodes": 3, "seed": 123}
    data["videos"] = {"selected": True, "steps": 60}  # short videos of the two selected checkpoints
    return data


@pytest.fixture(scope="module")
def quickstart_run(ray_local, minari_root, tmp_path_factory):
    storage = tmp_path_factory.mktemp("runs")
    spec = parse_pipeline(small_quickstart(storage), source="quickstart-small")
    lines: list[str] = []
    result = run_pipeline(spec, write=lines.append)
    return spec, result, lines


def test_quickstart_runs_both_phases_with_checkpoints(quickstart_run):
    spec, result, lines = quickstart_run
    off, on = result.phases
    assert (off.algorithm, off.paradigm, off.updates, off.env_steps) == ("td3_bc", "offline", 600, 0)
    assert (on.algorithm, on.paradigm, on.env_steps) == ("td3", "online", 600)
    assert on.updates == 600  # UTD 1: one update per environment step
    for p in result.phases:
        assert Path(p.checkpoint, "rllib_checkpoint.json").is_file()
        assert p.evaluation_return is not None and p.normalized_score is not None
    summary = json.loads(Path(result.run_dir, "summary.json").read_text())
    assert [p["phase"] for p in summary["phases"]] == ["offline", "online"]
    # Progress lines on each phase's own axis, and the summary table.
    assert any("updates      300/600" in l for l in lines)
    assert any("env steps      600/600" in l for l in lines)
    table = result.table()
    assert "offline" in table and "online" in table and on.checkpoint_id in table


def test_selected_checkpoints_get_videos_in_the_lineage(quickstart_run):
    """The run does not wait for its last videos: they render in the background and land in the lineage."""
    from mprl.lineage import LineageStore

    _, result, lines = quickstart_run
    deadline = time.monotonic() + 240
    while True:
        with LineageStore(result.run_dir, readonly=True) as store:
            selected = store.checkpoints(selected_only=True)
            videos = {c["checkpoint_id"]: store.videos(c["checkpoint_id"]) for c in selected}
        if all(videos.values()) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {c["node_id"] for c in selected} == {"offline", "online"}
    with LineageStore(result.run_dir, readonly=True) as store:
        for c in selected:
            (video,) = videos[c["checkpoint_id"]]
            path = store.abs(video["path"])
            assert path.suffix == ".mp4" and path.stat().st_size > 1000 and video["steps"] == 60
            assert video["source"] == "training"
    assert any(line.startswith("video of ck-") or "render in the background" in line for line in lines)


def test_phase_two_starts_from_phase_one_skill(quickstart_run):
    """Same weights and the same evaluation seeds give exactly phase 1's evaluation return."""
    _, result, _ = quickstart_run
    off, on = result.phases
    assert on.initial_return == pytest.approx(off.evaluation_return, rel=1e-6)


def test_phase_two_initial_actions_equal_phase_one_final_actions(quickstart_run, minari_root):
    """Build phase 2's algorithm exactly as its Tune trials do; compare actions on dataset states."""
    from algorithms.td3_bc import TD3BC
    from mprl.datasets import load_transitions

    spec, result, _ = quickstart_run
    off, on = result.phases
    phase2 = spec.phase("online")
    states = torch.as_tensor(load_transitions(spec.phase("offline").dataset_id)["obs"][:1000])

    source = TD3BC.from_checkpoint(off.checkpoint)
    target = phase_config(phase2, off.checkpoint, reference_scores_for(phase2)).build_algo()
    try:
        with torch.no_grad():
            a_src = source.env_runner.module.act(states).numpy()
            a_env_runner = target.env_runner.module.act(states).numpy()
            a_learner = target.learner_group._learner.module["default_policy"].act(states).numpy()
        np.testing.assert_array_equal(a_env_runner, a_src)
        np.testing.assert_array_equal(a_learner, a_src)
        report = target.transfer_report
        assert not report["skipped"] and not report["left_initialised"]
        assert any(k.startswith("normalizer.") for k in report["copied"])
        assert any(k.startswith("critics_target.") for k in report["copied"])
    finally:
        source.stop()
        target.stop()
