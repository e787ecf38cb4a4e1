"""Shared fixtures: one real local Ray cluster per test session, Minari folders in tmp."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray (2 CPUs, no dashboard), never an address recorded by `ray start`."""
    import ray

    from mprl.quiet import quiet_ray_startup

    quiet_ray_startup()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def minari_root(tmp_path_factory):
    """A session Minari folder; tests that build datasets share what they build."""
    root = tmp_path_factory.mktemp("minari_session")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    yield root
    if old is None:
        os.environ.pop("MINARI_DATASETS_PATH", None)
    else:
        os.environ["MINARI_DATASETS_PATH"] = old


@pytest.fixture(scope="session")
def mixed_data(minari_root):
    """InvertedPendulum data where the controller's good (K·s) and opposite (−K·s) actions
    share states (p 0.4 opposite, σ 0.3 noise): episodes last 1–185 steps, mean return ≈ 31.
    Cloning it averages the two; an offline method that weighs actions by value keeps the good ones."""
    from scripted_pendulum import controller_dataset

    return controller_dataset("mprl/invertedpendulum/controller-mix40-v0", steps=20_000, p_bad=0.4, noise=0.3)


@dataclass
class S3Server:
    """A real S3 HTTP endpoint on 127.0.0.1 (moto's server); clients find it via AWS_ENDPOINT_URL."""

    endpoint: str
    env: dict[str, str]  # what a process (or a Ray job's runtime_env) needs to reach it

    def bucket(self, name: str) -> str:
        """Create bucket `name`; its URI."""
        import pyarrow.fs as pafs

        pafs.S3FileSystem(endpoint_override=self.endpoint, access_key="test", secret_key="test", region="us-east-1",
                          allow_bucket_creation=True).create_dir(name)
        return f"s3://{name}"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 server in a subprocess; the test process talks to it through the AWS_* variables."""
    exe = str(Path(sys.executable).parent / "moto_server")  # this environment's, not another Python's on PATH
    assert Path(exe).is_file(), f"{exe} is missing: pip install -e '.[test]' (moto[server])"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115 - open while the server runs
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, f"moto_server did not start: {(log.name)}"
            time.sleep(0.2)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield S3Server(endpoint, env)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
