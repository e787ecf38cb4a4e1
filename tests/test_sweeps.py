"""The κ-schedule sweep as shipped in tune_configs/, at tiny budgets, on a real local Ray + Tune."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mprl.pipeline.driver import run_pipeline
from mprl.spec import load_pipeline, parse_pipeline

SWEEP = Path(__file__).parents[1] / "tune_configs" / "sweep_kappa.yaml"


@pytest.fixture(scope="module")
def sweep_run(ray_local, minari_root, tmp_path_factory):
    data = load_pipeline(SWEEP).to_dict()
    data["storage_path"] = str(tmp_path_factory.mktemp("sweep_runs"))
    data["videos"] = {"selected": False}
    off, on = data["phases"]
    off["dataset"]["build"]["size"] = 3000
    off["budget"] = {"updates": 200}
    off["evaluation"] = {"interval": 200, "episodes": 2}
    on["budget"] = {"env_steps": 300}
    on["evaluation"] = {"interval": 150, "episodes": 2}
    on["config"].update(n_tau=100, n_pretrain=20, kappa_steps=100, utd=1)
    on["sweep"] = on["sweep"][:2]
    on["tune"]["seeds"] = [0, 1]
    lines: list[str] = []
    result = run_pipeline(parse_pipeline(data, source="sweep-small"), write=lines.append)
    return result, lines


def test_sweep_runs_one_trial_per_point_and_seed(sweep_run):
    result, _ = sweep_run
    assert result.phases[1].trials == 4
    assert result.phases[1].algorithm == "opt" and result.phases[1].paradigm == "hybrid"


def test_sweep_writes_a_table_per_point(sweep_run):
    result, lines = sweep_run
    out = Path(result.run_dir) / "online"
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["point"] for r in rows] == ["0.1→0.9", "0.1→0.8"]
    for r in rows:
        assert int(r["n"]) == 2
        assert float(r["ci_low"]) <= float(r["mean"]) <= float(r["ci_high"])
        assert "iqm" in r
    md = (out / "sweep.md").read_text()
    assert "0.1→0.9" in md and "IQM" in md
    for png in ("sweep.png", "sweep_curves.png"):
        assert (out / png).stat().st_size > 5000
    assert any("| 0.1→0.8 |" in line for line in lines)  # the table is printed too
