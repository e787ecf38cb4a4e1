"""GPU-ready learners: a phase's `resources.num_gpus_per_learner` reaches RLlib, a request the
cluster cannot meet is one clear error before Tune starts (it used to wait silently), and a
learner's data and networks sit on its device with no host sync per update.

No GPU is lent to this machine: the device is the CPU here, and the sync test counts the
host reads mprl's own code makes (a per-update one would grow with the number of updates)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from mprl.errors import MprlError
from mprl.spec import parse_pipeline

ENV = "InvertedPendulum-v5"
DATASET = "mprl/invertedpendulum/gpu-test-v0"


def pipeline(storage: Path, *phases: dict, **top) -> dict:
    return {"name": "gpu", "storage_path": str(storage), "phases": list(phases), **top}


def online(name: str = "train", **extra) -> dict:
    return {"name": name, "algorithm": "td3", "env": ENV, "budget": {"env_steps": 30000}, **extra}


# ------------------------------------------------------------------ the spec and the request


def test_the_phase_yaml_sets_and_validates_num_gpus_per_learner(tmp_path):
    from mprl.pipeline.phases import phase_config
    from mprl.preflight import trial_request

    spec = parse_pipeline(pipeline(tmp_path, online(resources={"num_gpus_per_learner": 0.5})))
    cfg = phase_config(spec.phases[0], None, None)
    assert cfg.num_gpus_per_learner == 0.5
    assert trial_request(cfg) == {"GPU": 0.5, "CPU": 1.0}  # RLlib's request: the learner in the trial's process
    swept = parse_pipeline(pipeline(tmp_path, online(resources={"num_gpus_per_learner": 1}, sweep=[{"num_env_runners": 0}, {"num_env_runners": 2}])))
    assert trial_request(phase_config(swept.phases[0], None, None), swept.phases[0].sweep) == {"GPU": 1.0, "CPU": 3.0}
    assert parse_pipeline(pipeline(tmp_path, online())).phases[0].resources.num_gpus_per_learner == 0

    with pytest.raises(MprlError, match=r"phases\[0\]\.resources\.num_gpus_per_learner"):
        parse_pipeline(pipeline(tmp_path, online(resources={"num_gpus_per_learner": -1})))
    with pytest.raises(MprlError, match=r"'num_gpus_per_learner' cannot be set under config: set it with the phase's `resources"):
        parse_pipeline(pipeline(tmp_path, online(config={"num_gpus_per_learner": 1})))


def test_a_gpu_the_cluster_lacks_is_one_clear_error_before_tune_starts(ray_local, tmp_path):
    from mprl.pipeline.driver import run_pipeline
    from mprl.preflight import check_cluster_resources

    assert ray_local.cluster_resources().get("GPU", 0) == 0  # this machine's local Ray: 2 CPUs, no GPU
    storage = tmp_path / "runs"
    spec = parse_pipeline(pipeline(storage, online("warmup"), online("finetune", resources={"num_gpus_per_learner": 1})))
    lines: list[str] = []
    t0 = time.perf_counter()
    with pytest.raises(MprlError) as e:
        run_pipeline(spec, write=lines.append)
    elapsed = time.perf_counter() - t0
    msg = str(e.value)
    # the later phase's request fails before the first phase starts, naming the setting and the cluster
    assert msg.startswith("Phase 'finetune': each trial asks Ray for 1 GPU, 1 CPU (resources.num_gpus_per_learner: 1")
    assert "but the Ray cluster has 0 GPU, 2 CPU in all" in msg and "resources: {num_gpus_per_learner: 0}" in msg
    assert "ray.check_resources: false" in msg
    assert elapsed < 30, f"the error took {elapsed:.0f}s"
    assert not storage.exists() or not any(storage.iterdir()), "no run folder is written"
    assert not any(line.startswith("run ") for line in lines)

    too_many = parse_pipeline(pipeline(storage, online(config={"num_env_runners": 4})))
    with pytest.raises(MprlError, match=r"asks Ray for 0 GPU, 5 CPU .*4 env runner\(s\) \(config\.num_env_runners\).*Lower config\.num_env_runners"):
        check_cluster_resources(too_many)
    # an autoscaling cluster: the check steps aside when asked to
    check_cluster_resources(parse_pipeline(pipeline(storage, online(resources={"num_gpus_per_learner": 1}), ray={"check_resources": False})))


# ------------------------------------------------------------------ device and host syncs


@contextlib.contextmanager
def host_reads() -> Iterator[list[str]]:
    """Record every tensor → host read (`item`, `tolist`, `cpu`, `numpy`, bool/float/int of a
    tensor) made directly by mprl's code (algorithms/, mprl/); on a GPU each is a sync."""
    roots = tuple(str(Path(__file__).resolve().parents[1] / d) for d in ("algorithms", "mprl"))
    calls: list[str] = []
    names = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
    originals = {n: getattr(torch.Tensor, n) for n in names}

    def wrap(name, fn):
        def counted(self, *a, **k):
            caller = sys._getframe(1).f_code
            if caller.co_filename.startswith(roots):
                calls.append(f"{name} in {caller.co_name} ({Path(caller.co_filename).name})")
            return fn(self, *a, **k)
        return counted

    for n, fn in originals.items():
        setattr(torch.Tensor, n, wrap(n, fn))
    try:
        yield calls
    finally:
        for n, fn in originals.items():
            setattr(torch.Tensor, n, fn)


@pytest.fixture(scope="module")
def gpu_test_dataset(minari_root):
    from mprl.datasets import build_dataset

    return build_dataset(ENV, "random", size=2000, seed=0, dataset_id=DATASET, progress=None, overwrite=True)


@pytest.mark.parametrize("algorithm", ["td3_bc", "cal_ql"])  # cal_ql's v_mu metric used to sync every update
def test_learner_data_and_networks_on_its_device_and_no_sync_per_update(ray_local, gpu_test_dataset, tmp_path, algorithm):
    from mprl.pipeline.phases import phase_config

    phase = {"name": "off", "algorithm": algorithm, "env": ENV, "dataset": gpu_test_dataset, "budget": {"updates": 100},
             "config": {"hidden": [32, 32], "train_batch_size_per_learner": 64}}
    spec = parse_pipeline(pipeline(tmp_path, phase))
    cfg = phase_config(spec.phases[0], None, None)
    assert cfg.num_gpus_per_learner == 0
    algo = cfg.build_algo()
    try:
        learner = algo.learner_group._learner
        device = learner.device
        assert device == torch.device("cpu")  # what RLlib gives num_gpus_per_learner 0; a GPU index otherwise
        sampler = learner.updates.sampler
        stores = [s for s in (sampler.offline, sampler.online, sampler.both) if s is not None]
        assert stores and all(t.device == device for s in stores for t in s.data.values())
        assert sampler.generator.device == device
        module = learner.module["default_policy"]
        assert all(t.device == device for t in [*module.parameters(), *module.buffers()])

        with host_reads() as few:
            learner.run_updates(3)
        with host_reads() as many:
            out = learner.run_updates(30)
        assert len(many) == len(few) <= 1, f"host reads grow with the updates: {many}"  # one read of the losses per call
        assert out and all(isinstance(v, float) for v in out.values())
        opt_state = [v for opt in learner._named_optimizers.values() for st in opt.state.values() for v in st.values()
                     if isinstance(v, torch.Tensor) and v.dim() > 0]
        assert opt_state and all(t.device == device for t in opt_state)
    finally:
        algo.stop()
