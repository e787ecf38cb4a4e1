"""Trackers switched on in the YAML (mprl.tracking) on a real local Ray + Tune: a tiny TD3 sweep
writes TensorBoard event files per trial, an MLflow run and a W&B offline run per trial, each
carrying the lineage ids (read back with tensorboardX's and W&B's protobufs and MLflow's client);
a missing package or a bad section is one error before anything starts; progress lines name the
sweep point; `mprl curves` keeps flat series flat and checkpoint labels apart."""

from __future__ import annotations

import glob
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from mprl.errors import MprlError, SpecError
from mprl.lineage import LineageStore
from mprl.spec import parse_pipeline


def tracked(storage: str | Path, **tracking) -> dict:
    """A one-phase online TD3 sweep over two values of tau on InvertedPendulum, tiny budget."""
    return {"name": "trk", "storage_path": str(storage), "videos": {"selected": False}, "tracking": tracking,
            "phases": [{"name": "on", "algorithm": "td3", "env": "InvertedPendulum-v5", "budget": {"env_steps": 200},
                        "evaluation": {"interval": 100, "episodes": 1},
                        "config": {"hidden": [32, 32], "random_steps": 100, "learning_starts": 100},
                        "sweep": [{"tau": 0.005}, {"tau": 0.02}], "tune": {"seeds": [0]}}]}


@pytest.fixture(scope="module")
def tracked_run(ray_local, tmp_path_factory):
    from mprl.pipeline.driver import run_pipeline

    root = tmp_path_factory.mktemp("tracked")
    lines: list[str] = []
    spec = parse_pipeline(tracked(root, tensorboard=True, mlflow=True, wandb={"project": "mprl-test"}), source="tracked")
    result = run_pipeline(spec, write=lines.append)
    with LineageStore(result.run_dir, readonly=True) as store:
        trials = {t["trial_id"]: t for t in store.trials("on")}
        checkpoints = {c["checkpoint_id"]: c for c in store.checkpoints("on")}
    return root, result, lines, trials, checkpoints


def _event_texts(path: str) -> tuple[set[str], dict[str, list[str]]]:
    """Scalar tags and text summaries of a TensorBoard event file (TFRecord framing, tensorboardX's Event proto)."""
    from tensorboardX.proto import event_pb2

    data, i, tags, texts = Path(path).read_bytes(), 0, set(), {}
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[i + 12:i + 12 + n])
        i += 12 + n + 4
        for v in event.summary.value:
            tags.add(v.tag)
            if v.tensor.string_val:
                texts.setdefault(v.tag, []).extend(s.decode() for s in v.tensor.string_val)
    return tags, texts


def _wandb_records(path: str):
    """The records of a W&B offline run file (`.wandb`: W&B's LevelDB-log framing, its Record proto)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    i, buf = 7, b""
    while i + 7 <= len(data):
        left = 32768 - i % 32768
        if left < 7:
            i += left
            continue
        _crc, n, kind = struct.unpack("<IHB", data[i:i + 7])
        chunk, i = data[i + 7:i + 7 + n], i + 7 + n
        if kind == 0 and n == 0:
            continue
        buf += chunk
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            yield record


def test_tensorboard_events_per_trial_carry_the_lineage_ids(tracked_run):
    _, result, _, trials, checkpoints = tracked_run
    files = glob.glob(f"{result.run_dir}/on/*/events.out.tfevents.*")
    assert len(files) == 2  # one per trial (two sweep points)
    seen = set()
    for f in files:
        tags, texts = _event_texts(f)
        assert any(t.startswith("ray/tune/evaluation_return") for t in tags), sorted(tags)[:20]
        lineage = texts["mprl/lineage/text_summary"][0]
        trial_id = next(t for t in trials if f"`{t}`" in lineage)
        seen.add(trial_id)
        assert f"`{result.run_id}`" in lineage and f"`{trials[trial_id]['sweep_label']}`" in lineage
        ckpts = texts["mprl/checkpoint/text_summary"]
        assert ckpts and all(checkpoints[c]["trial_id"] == trial_id for c in ckpts)  # ids the lineage knows
    assert seen == set(trials)


def test_mlflow_run_per_trial_tagged_with_the_lineage_ids(tracked_run):
    from mlflow.tracking import MlflowClient

    root, result, _, trials, checkpoints = tracked_run
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("trk").experiment_id])
    assert len(runs) == 2
    for run in runs:
        tags = run.data.tags
        trial = trials[tags["mprl.trial_id"]]
        assert tags["mprl.run_id"] == result.run_id and tags["mprl.phase"] == "on"
        assert tags["mprl.sweep_point"] == trial["sweep_label"] and trial["sweep_label"] in run.info.run_name
        ids = tags["mprl.checkpoint_ids"].split(",")
        assert ids and all(checkpoints[c]["trial_id"] == trial["trial_id"] for c in ids)
        assert run.info.status == "FINISHED"
        assert "evaluation_return" in run.data.metrics and run.data.params["seed"] == "0"
        history = client.get_metric_history(run.info.run_id, "evaluation_return")
        assert len(history) == 2  # one per training iteration (200 env steps, evaluated every 100)


def test_wandb_offline_run_per_trial_carries_the_lineage_ids(tracked_run):
    _, result, _, trials, checkpoints = tracked_run
    files = glob.glob(f"{result.run_dir}/wandb/offline-run-*/*.wandb")
    assert len(files) == 2
    for f in files:
        records = list(_wandb_records(f))
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        mprl = json.loads(next(u.value_json for u in run.config.update if u.key == "mprl"))
        trial = trials[mprl["trial_id"]]
        assert run.run_id == f"{result.run_id}-{trial['trial_id']}" and run.run_group == result.run_id
        assert {result.run_id, "on"} <= set(run.tags) and trial["sweep_label"] in run.display_name
        assert mprl["run_id"] == result.run_id and mprl["sweep_point"] == trial["sweep_label"]
        updates = [json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "config"
                   for u in r.config.update if u.key == "mprl_checkpoint_ids"]
        assert updates and all(checkpoints[c]["trial_id"] == trial["trial_id"] for c in updates[-1])
        assert sum(r.WhichOneof("record_type") == "history" for r in records) == 2


def test_progress_lines_of_a_sweep_trial_name_its_point(tracked_run):
    _, _, lines, _, _ = tracked_run
    for point in ("tau=0.005", "tau=0.02"):
        assert any(line.startswith(f"[on] {point} · seed 0  env steps") for line in lines), lines
        assert any(line.startswith("[on] trial ") and f"started ({point} · seed 0)" in line for line in lines), lines


def test_a_missing_package_is_one_error_before_anything_starts(tmp_path, monkeypatch):
    from mprl.pipeline.driver import validate_inputs

    monkeypatch.setitem(sys.modules, "wandb", None)  # what an environment without wandb imports
    spec = parse_pipeline(tracked(tmp_path / "runs", wandb={"project": "p"}))
    with pytest.raises(MprlError) as e:
        validate_inputs(spec, print)
    assert "tracking.wandb" in str(e.value) and "wandb is not installed" in str(e.value)
    assert "pip install 'mprl[tracking]'" in str(e.value)
    assert not (tmp_path / "runs").exists()


def test_bad_tracking_sections_name_the_field_and_the_fix(tmp_path):
    with pytest.raises(SpecError) as e:
        parse_pipeline(tracked(tmp_path, mlflow={"tracking_url": "http://x"}, wandb={"mode": "offlin"}, tensorboard="always"))
    message = str(e.value)
    assert "tracking.mlflow.tracking_url: unknown field 'tracking_url'; did you mean 'tracking_uri'?" in message
    assert "tracking.wandb.mode: 'offlin' is not allowed; choose one of 'offline', 'online', 'disabled'" in message
    assert "tracking.tensorboard: expected true or false" in message

    from mprl.tracking import check_tracking

    with pytest.raises(MprlError, match="set tracking.mlflow.tracking_uri"):  # no local folder for the default sqlite file
        check_tracking(parse_pipeline({**tracked(tmp_path, mlflow=True), "storage_path": "s3://bucket/runs"}))


def test_tensorboard_false_keeps_tune_from_adding_its_logger():
    from ray.tune.logger import TBXLoggerCallback
    from ray.tune.utils.callback import _create_default_callbacks

    from mprl.tracking import NoTensorBoard, tracking_callbacks

    spec = parse_pipeline(tracked("/tmp/x", tensorboard=False))
    callbacks = tracking_callbacks(spec, spec.phases[0], "r", "/tmp/x/r", "/tmp/x/r", "on")
    assert [type(c) for c in callbacks] == [NoTensorBoard]
    tbx = [c for c in _create_default_callbacks(list(callbacks), air_verbosity=None) if isinstance(c, TBXLoggerCallback)]
    assert tbx == callbacks  # Tune's own would write events.out.tfevents.* into every trial folder


# ---- `mprl curves` readability (matplotlib objects of the PNG)


def _panel(points: list[list[float]], checkpoints: list[tuple[float, float, str]]) -> dict:
    node = {"node_id": "on", "algorithm": "td3", "env": "Hopper-v5", "paradigm": "online", "offset": 0, "end": points[-1][0],
            "stages": [], "trials": [{"trial_id": "t0", "seed": 0, "sweep_label": None, "points": points}],
            "checkpoints": [{"x": x, "evaluation_return": y, "normalized_score": None, "checkpoint_id": cid, "selected": True,
                             "selection": "top", "videos": [], "trial_id": "t0"} for x, y, cid in checkpoints]}
    return {"axis": "env_steps", "label": "environment steps", "nodes": [node]}


def _figure_of(panel: dict):
    from mprl.lineage.plots import curves_figure, panel_metric, panel_series

    metric = panel_metric(panel)
    fig = curves_figure({"run": {"run_id": "r", "status": "succeeded"}}, [(panel, metric, panel_series(panel, metric, {}))])
    fig.canvas.draw()
    return fig


def test_png_flat_series_has_plain_distinct_ticks_and_a_flat_line():
    points = [[x, 37.1 + 1e-4 * np.sin(x / 100), None] for x in range(100, 1100, 100)]
    fig = _figure_of(_panel(points, [(1000, points[-1][1], "ck-aaaa")]))
    ax = fig.axes[0]
    assert ax.yaxis.get_major_formatter().get_offset() == ""  # no '+3.71e1' offset text
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) == len(set(labels)) >= 3, labels
    lo, hi = ax.get_ylim()
    assert hi - lo >= 0.05 * 37.1 and lo < 37.1 < hi  # a 1e-4 wiggle spans a sliver of the axis, not all of it


def test_png_checkpoint_labels_do_not_overlap():
    points = [[x, x / 10.0, None] for x in range(100, 1100, 100)]
    cks = [(x, x / 10.0, f"ck-{i:010d}") for i, x in enumerate((900, 920, 940, 960, 1000))]  # close on the curve
    fig = _figure_of(_panel(points, cks))
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if t.get_text().startswith("ck-")]
    boxes = [Text.get_window_extent(t, renderer) for t in labels]  # the text, not its leader line
    assert len(boxes) == 5
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    inside = fig.axes[0].get_window_extent(renderer)
    assert all(inside.y0 <= b.y0 and b.y1 <= inside.y1 for b in boxes)  # inside the axes, off the title
    stars = [fig.axes[0].transData.transform(t.xy) for t in labels]
    assert not [b for b in boxes for x, y in stars if b.contains(x, y)]  # no label over a star
    assert max(t.xyann[1] for t in labels) > 5  # some were moved (they overlapped where they were)


def test_page_y_range_keeps_a_flat_series_flat():
    """The page's uPlot y range (app.js `yRange`, run in Node) follows the PNG's rule."""
    import re
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    js = (Path(__file__).parents[1] / "mprl" / "serve" / "static" / "app.js").read_text()
    body = re.search(r"function yRange\(u, min, max\) \{.*?\n\}", js, re.DOTALL).group(0)
    out = subprocess.run([node, "-e", body + "\nconsole.log(JSON.stringify([yRange(null, 37.1, 37.1001), yRange(null, 0, 0), yRange(null, 10, 90)]))"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    (lo, hi), (zlo, zhi), (wlo, whi) = json.loads(out)
    assert hi - lo >= 0.05 * 37.1 and lo < 37.1 and 37.1001 < hi
    assert zhi - zlo >= 1.0
    assert (wlo, whi) == pytest.approx((10 - 6.4, 90 + 6.4))  # a real spread keeps its 8% margins
