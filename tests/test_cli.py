"""The `mprl` command as a user runs it: readable errors, exit status 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

VALID = """\
name: cli-check
storage_path: {storage}
phases:
  - name: offline
    algorithm: td3_bc
    env: Hopper-v5
    dataset: {dataset}
    budget: {{updates: 100}}
  - name: online
    algorithm: td3
    env: Hopper-v5
    init_from: {init_from}
    budget: {{env_steps: 100}}
"""


def mprl(*args: str, minari: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINARI_DATASETS_PATH": str(minari)}
    return subprocess.run([sys.executable, "-m", "mprl.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "minari").mkdir()
    return tmp_path


def write_spec(workdir: Path, **fields: str) -> Path:
    values = {"storage": str(workdir / "runs"), "dataset": "mprl/hopper/random-v0", "init_from": "offline", **fields}
    path = workdir / "pipeline.yaml"
    path.write_text(VALID.format(**values))
    return path


def assert_clean_failure(proc: subprocess.CompletedProcess, workdir: Path, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("mprl: error:")
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert not (workdir / "runs").exists(), "a failed start must not create a run folder"


def test_invalid_yaml_field_names_path_value_and_fix(workdir):
    path = write_spec(workdir)
    path.write_text(path.read_text().replace("budget: {updates: 100}", "budget: {updates: 100}\n    config: {aplha: 2.5}"))
    proc = mprl("run", str(path), minari=workdir / "minari", cwd=workdir)
    assert_clean_failure(proc, workdir, "phases[0].config", "aplha", "did you mean 'alpha'")


def test_unknown_algorithm(workdir):
    path = write_spec(workdir)
    path.write_text(path.read_text().replace("algorithm: td3\n", "algorithm: td4\n"))
    proc = mprl("run", str(path), minari=workdir / "minari", cwd=workdir)
    assert_clean_failure(proc, workdir, "phases[1].algorithm", "td4", "td3")


def test_missing_dataset_names_the_build_command(workdir):
    proc = mprl("run", str(write_spec(workdir)), minari=workdir / "minari", cwd=workdir)
    assert_clean_failure(proc, workdir, "mprl/hopper/random-v0", "mprl datasets build Hopper-v5 --quality random")


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_bad_init_checkpoint(workdir, kind):
    ckpt = workdir / "ckpt"
    if kind == "corrupt":
        state = ckpt / "learner_group" / "learner" / "rl_module" / "default_policy"
        state.mkdir(parents=True)
        (state / "module_state.pkl").write_bytes(b"\x80\x04not a pickle")
    path = write_spec(workdir, init_from=f"{{checkpoint: {ckpt}}}")
    proc = mprl("run", str(path), minari=workdir / "minari", cwd=workdir)
    assert_clean_failure(proc, workdir, str(ckpt), "does not exist" if kind == "missing" else "corrupt")


def test_algorithms_lists_the_catalogue(workdir):
    proc = mprl("algorithms", minari=workdir / "minari", cwd=workdir)
    assert proc.returncode == 0
    assert "td3_bc" in proc.stdout and "offline" in proc.stdout and "online" in proc.stdout


def test_env_of_other_spaces_than_its_dataset_is_refused_before_the_run(workdir, monkeypatch):
    """The dataset's metadata knows its env: a phase on an env of other spaces fails at
    validation (one message, exit 2, no run folder), not 29 s in with a shape traceback."""
    from mprl.datasets import build_dataset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(workdir / "minari"))
    build_dataset("InvertedPendulum-v5", "random", size=300, dataset_id="mprl/invertedpendulum/random-v0")
    proc = mprl("run", str(write_spec(workdir, dataset="mprl/invertedpendulum/random-v0")), minari=workdir / "minari", cwd=workdir)
    assert_clean_failure(proc, workdir, "phase 'offline'", "Hopper-v5", "[11]", "mprl/invertedpendulum/random-v0", "InvertedPendulum-v5", "[4]")


def _checkpoint_with_module_only(root: Path) -> Path:
    """An algorithm checkpoint folder whose module (class, arguments, weights) is real and whose
    algorithm description (the root `class_and_ctor_args.pkl`) is missing."""
    from algorithms.common.checkpoints import MODULE_SUBDIR
    from mprl.catalogue import get_algorithm
    from mprl.transfer.snapshots import module_from_config

    module = module_from_config(get_algorithm("td3").new_config().environment("InvertedPendulum-v5"))
    module.save_to_path(root / MODULE_SUBDIR)
    return root


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_unreadable_algorithm_description_fails_the_load(tmp_path, kind):
    """No silent defaults: without its algorithm description a policy would be served with
    default action settings (a SAC policy unscaled); the load fails naming checkpoint and problem."""
    from mprl.errors import CheckpointError
    from mprl.serve.policy import load_policy

    ckpt = _checkpoint_with_module_only(tmp_path / "ckpt")
    if kind == "corrupt":
        (ckpt / "class_and_ctor_args.pkl").write_bytes(b"\x80\x04truncated")
    with pytest.raises(CheckpointError) as e:
        load_policy(ckpt)
    assert str(ckpt) in str(e.value) and "algorithm description" in str(e.value)
    if kind == "corrupt":  # the command line: one message, exit 2
        proc = mprl("video", str(ckpt), "-o", str(tmp_path / "v.mp4"), "--steps", "5", minari=tmp_path, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        (error,) = [line for line in proc.stderr.splitlines() if line.startswith("mprl: error:")]
        assert str(ckpt) in error and "algorithm description" in error
        assert not (tmp_path / "v.mp4").exists()
