"""Pipelines as Ray Jobs on a real two-node Ray cluster, started by the scripts in cluster/.

One cluster for the module: cluster/start_head.sh (a head node with 1 CPU, token auth, job
server on 127.0.0.1) and cluster/add_worker.sh (a second node on this machine with its own
raylet and 1 CPU), then the real `ray job submit` CLI with `--working-dir .`, and
cluster/stop.sh at the end, which must leave none of the cluster's processes behind. Nothing is
skipped: without `ray`, `setsid` or free ports the fixture fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mprl.cluster import JobServer, client_env
from mprl.lineage import LineageError, LineageStore, open_lineage

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
BIN = Path(sys.executable).parent  # the programs of this interpreter's environment, not whatever is on PATH
RAY = str(BIN / "ray")
RUN_LINE = "run "  # `mprl run` prints "run <run_id>: N phase(s) → <run_dir>" when it starts


def free_port() -> int:
    """An OS-assigned port (32768+ here, so outside Ray's worker range 10002-19999)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def marked_pids(cluster_dir: Path) -> list[int]:
    """Processes of the cluster: everything it starts inherits MPRL_CLUSTER_DIR=<dir>."""
    marker = f"MPRL_CLUSTER_DIR={cluster_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@dataclass
class Cluster:
    dir: Path
    env: dict[str, str]  # the `ray` CLI's environment: RAY_ADDRESS, RAY_AUTH_MODE, RAY_AUTH_TOKEN_PATH
    server: JobServer
    storage: Path  # the runs' storage path (a shared filesystem on a real cluster)
    minari: Path  # MINARI_DATASETS_PATH of every job

    def submit(self, *entrypoint: str, wait: bool = False, timeout: float = 240, env: dict[str, str] | None = None) -> tuple[str, str]:
        """`ray job submit --working-dir .` from the repo, with `env` added to the job's
        environment; (submission id, the CLI's output)."""
        sid = f"mprl-test-{uuid.uuid4().hex[:8]}"
        runtime_env = {"env_vars": {"MINARI_DATASETS_PATH": str(self.minari), "MUJOCO_GL": "egl", **(env or {})}}
        cmd = [RAY, "job", "submit", "--submission-id", sid, "--working-dir", ".",
               "--runtime-env-json", json.dumps(runtime_env), *([] if wait else ["--no-wait"]), "--", *entrypoint]
        out = subprocess.run(cmd, cwd=REPO, env=self.env, check=False, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0 or wait, f"ray job submit failed:\n{out.stdout}\n{out.stderr}"
        return sid, out.stdout + out.stderr

    def lineage(self, logs: str) -> LineageStore:
        run_dir = run_dir_from(logs)
        assert run_dir.parent == self.storage, f"the run went to {run_dir}, not the storage path {self.storage}"
        return LineageStore(run_dir, readonly=True)


def _run_lines(logs: str) -> list[str]:
    return [ln for ln in logs.splitlines() if ln.startswith(RUN_LINE) and " → " in ln]


def run_location(logs: str) -> str:
    """Where the run went: a folder, or a URI for remote storage."""
    lines = _run_lines(logs)
    assert lines, f"no 'run <id>: ... → <dir>' line in the job's logs:\n{logs[-3000:]}"
    return lines[0].split(" → ", 1)[1].strip()


def run_dir_from(logs: str) -> Path:
    return Path(run_location(logs))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    assert Path(RAY).is_file(), f"{RAY} is missing: install mprl into this interpreter's environment (README: Quick start)"
    assert shutil.which("setsid"), "setsid is needed to start a cluster (util-linux)"
    # Short: Ray's Unix socket paths under the temp dir must stay below 108 bytes.
    cdir = Path(tempfile.mkdtemp(prefix="mprl-c-", dir="/tmp"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MPRL_CLUSTER"))}
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"  # the scripts' `ray` and `python`: this interpreter's, venv activated or not
    scripts_env = {**base, "MPRL_START_TIMEOUT": "150"}
    data = tmp_path_factory.mktemp("cluster_data")
    try:
        t0 = time.monotonic()
        head = subprocess.run(
            [CLUSTER / "start_head.sh", "--dir", cdir, "--num-cpus", "1", "--port", str(free_port()),
             "--dashboard-port", str(free_port()), "--client-port", str(free_port())],
            env=scripts_env, check=False, capture_output=True, text=True, timeout=200,
        )
        assert head.returncode == 0, f"start_head.sh failed:\n{head.stdout}\n{head.stderr}"
        worker = subprocess.run([CLUSTER / "add_worker.sh", "--dir", cdir, "--num-cpus", "1"],
                                env=scripts_env, check=False, capture_output=True, text=True, timeout=200)
        assert worker.returncode == 0, f"add_worker.sh failed:\n{worker.stdout}\n{worker.stderr}"
        print(f"cluster up in {time.monotonic() - t0:.0f}s")
        c = Cluster(cdir, client_env(cdir, base=base), JobServer.of(cdir), data / "results", data / "minari")
        c.storage.mkdir()
        yield c
    finally:
        subprocess.run([CLUSTER / "stop.sh", "--dir", cdir], env=base, check=False, capture_output=True, timeout=120)
        left = marked_pids(cdir)
        shutil.rmtree(cdir, ignore_errors=True)
        assert not left, f"cluster/stop.sh left processes of the cluster running: {left}"


@pytest.fixture(scope="module", autouse=True)
def failing_jobs(cluster, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """Two jobs that must fail, submitted as soon as the cluster is up so that they run next to
    the other tests' jobs: {what: (submission id, the error the logs must show)}."""
    d = tmp_path_factory.mktemp("failing")
    bad = yaml.safe_load((CLUSTER / "smoke.yaml").read_text())
    bad["phases"][0]["config"]["aplha"] = 2.5  # a typo
    (d / "bad.yaml").write_text(yaml.safe_dump(bad))
    missing = yaml.safe_load((CLUSTER / "smoke.yaml").read_text())
    missing["phases"][0]["dataset"] = {"id": "mprl/invertedpendulum/nowhere-v0"}  # no build: must exist
    (d / "missing.yaml").write_text(yaml.safe_dump(missing))
    storage = str(d / "runs")
    return {
        "bad yaml": (cluster.submit("mprl", "run", str(d / "bad.yaml"), "--storage-path", storage)[0],
                     "phases[0].config.aplha: unknown setting 'aplha' for td3_bc; did you mean 'alpha'?"),
        "missing dataset": (cluster.submit("mprl", "run", str(d / "missing.yaml"), "--storage-path", storage)[0],
                            "mprl: error: Dataset 'mprl/invertedpendulum/nowhere-v0' is not in MINARI_DATASETS_PATH"),
    }


def test_head_requires_the_token(cluster):
    """The job server answers with the token and refuses without it (token auth is on)."""
    assert cluster.server.url.startswith("http://127.0.0.1:")
    assert isinstance(cluster.server.get("/api/jobs/"), list)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(cluster.server.url + "/api/jobs/", timeout=10)
    assert e.value.code in (401, 403)
    with pytest.raises(urllib.error.HTTPError) as e:
        JobServer(cluster.server.url, "0" * 64).get("/api/jobs/")
    assert e.value.code in (401, 403)
    # The `ray` CLI takes the token file (env.sh, used by every submit below) or the token itself.
    by_value = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_TOKEN_PATH"}
    by_value["RAY_AUTH_TOKEN"] = (cluster.dir / "auth_token").read_text()
    out = subprocess.run([RAY, "job", "list"], env=by_value, check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    nodes = [n for n in cluster.server.nodes() if n["state"] == "ALIVE"]
    assert len(nodes) == 2 and sorted(n["is_head_node"] for n in nodes) == [False, True]
    assert all(n["resources_total"].get("CPU") == 1 for n in nodes)


def _assert_lineage_complete(store: LineageStore, storage: Path, phases: list[str]) -> None:
    run = store.run()
    assert run["status"] == "succeeded", run
    nodes = store.nodes()
    assert [n["phase"] for n in nodes] == phases and all(n["status"] == "succeeded" for n in nodes), nodes
    ckpts = store.checkpoints()
    assert {c["phase"] for c in ckpts} == set(phases)
    for c in ckpts:
        path = store.abs(c["path"])
        assert (path / "rllib_checkpoint.json").is_file(), f"lineage names a checkpoint that is not on storage: {path}"
        assert storage.resolve() in path.resolve().parents
    selected = store.checkpoints(selected_only=True)
    assert {c["phase"] for c in selected} == set(phases)
    deadline = time.monotonic() + 240  # the last videos render after the job's driver has ended
    while True:
        videos = store.videos()
        missing = {c["checkpoint_id"] for c in selected} - {v["checkpoint_id"] for v in videos}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not missing, f"selected checkpoints without a video in the lineage: {missing}"
    for v in videos:
        assert store.abs(v["path"]).stat().st_size > 1000 and storage.resolve() in store.abs(v["path"]).resolve().parents


def test_submitted_pipeline_succeeds_and_lands_in_storage(cluster):
    t0 = time.monotonic()
    sid, out = cluster.submit("mprl", "run", "cluster/smoke.yaml", "--storage-path", str(cluster.storage), wait=True)
    elapsed = time.monotonic() - t0
    # `ray job submit` without --no-wait streams the job's logs while it runs: the run line, then
    # each phase's progress lines.
    assert run_dir_from(out) and "[offline] seed 0" in out and "[online] seed 0" in out, out[-3000:]
    assert f"Job '{sid}' succeeded" in out, out[-3000:]
    assert cluster.server.job(sid)["status"] == "SUCCEEDED"
    with cluster.lineage(out) as store:
        _assert_lineage_complete(store, cluster.storage, ["offline", "online"])
        # The online phase started from the offline phase's selected checkpoint.
        off, on = store.nodes()
        selected_off = store.checkpoints(off["node_id"], selected_only=True)
        assert on["parent_checkpoint_id"] in {c["checkpoint_id"] for c in selected_off}
    print(f"smoke pipeline as a job: {elapsed:.0f}s")


def _has_checkpoint(logs: str, phase: str) -> bool:
    if not _run_lines(logs) or not (run_dir_from(logs) / "lineage.sqlite").exists():
        return False
    try:
        with LineageStore(run_dir_from(logs), readonly=True) as store:
            return any(c["phase"] == phase for c in store.checkpoints())
    except sqlite3.Error:  # the scheduler is creating it
        return False


def _stop_job(cluster: Cluster, sid: str) -> None:
    """`ray job stop`, as a user would; the job must end STOPPED."""
    stop = subprocess.run([RAY, "job", "stop", sid], cwd=REPO, env=cluster.env, check=False, capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert cluster.server.wait(sid, timeout=60)["status"] == "STOPPED"


def test_stopped_job_resumes_to_success(cluster):
    sid, _ = cluster.submit("mprl", "run", "cluster/smoke.yaml", "--storage-path", str(cluster.storage))
    # Stop once the lineage has a checkpoint of the offline phase: the run is partly done.
    deadline = time.monotonic() + 150
    while not _has_checkpoint(logs := cluster.server.logs(sid), "offline"):
        assert cluster.server.job(sid)["status"] in ("PENDING", "RUNNING"), logs
        assert time.monotonic() < deadline, f"no offline checkpoint after 150s:\n{logs}"
        time.sleep(1)
    _stop_job(cluster, sid)
    logs = cluster.server.logs(sid)
    run_dir = run_dir_from(logs)
    with LineageStore(run_dir, readonly=True) as store:
        assert store.run()["status"] == "stopped", (store.run(), logs[-3000:])
        done = {n["phase"] for n in store.nodes() if n["status"] == "succeeded"}
        assert done != {"offline", "online"}, "the job was stopped after the run had finished: nothing to resume"
    # `mprl resume` as a job of its own continues the run to the end.
    resume_sid, out = cluster.submit("mprl", "resume", run_dir.name, "--storage-path", str(cluster.storage), wait=True)
    assert f"Job '{resume_sid}' succeeded" in out, out[-3000:]
    with LineageStore(run_dir, readonly=True) as store:
        _assert_lineage_complete(store, cluster.storage, ["offline", "online"])


def _assert_trials_on_both_nodes(cluster: Cluster, store: LineageStore, trials: list[dict]) -> None:
    assert sorted(t["sweep_label"] for t in trials) == ["fast", "slow"]
    # Each trial's actor pid (Tune's `pid` in every result row) → the node that ran it.
    pid_of = {t["trial_id"]: json.loads(store.metrics(trial_id=t["trial_id"])[-1]["data_json"])["pid"] for t in trials}
    node_of_pid = cluster.server.node_of_pids(set(pid_of.values()))
    assert set(node_of_pid) == set(pid_of.values()), f"no actor with the pids {pid_of} in the state API"
    node_of = {tid: node_of_pid[pid] for tid, pid in pid_of.items()}
    cluster_nodes = {n["node_id"] for n in cluster.server.nodes() if n["state"] == "ALIVE"}
    assert set(node_of.values()) == cluster_nodes, f"trials ran on {node_of}, cluster nodes {cluster_nodes}"
    # The scheduler recorded checkpoints written by the trials of both nodes.
    assert {c["trial_id"] for c in store.checkpoints() if c["trial_id"] in node_of} == set(node_of)


def test_sweep_trials_run_on_both_nodes(cluster):
    sid, out = cluster.submit("mprl", "run", "cluster/smoke_sweep.yaml", "--storage-path", str(cluster.storage), wait=True)
    assert f"Job '{sid}' succeeded" in out, out[-3000:]
    with cluster.lineage(out) as store:
        _assert_lineage_complete(store, cluster.storage, ["online"])
        _assert_trials_on_both_nodes(cluster, store, store.trials())


def _remote_lineage(uri: str) -> LineageStore | None:
    from mprl.lineage import open_lineage

    try:
        return open_lineage(uri)
    except (LineageError, sqlite3.Error):  # not uploaded yet
        return None


def test_object_store_run_spans_nodes_stops_and_resumes(cluster, s3_server, tmp_path):
    """storage_path s3://…: both nodes' trials write checkpoints to the bucket, `ray job stop` and
    `mprl resume` continue the run from the bucket alone, and lineage, checkpoints, reports and
    videos all land there (nothing in a local run folder)."""
    from mprl import storage

    runs = s3_server.bucket("mprl-cluster-test") + "/runs"
    spec = yaml.safe_load((CLUSTER / "smoke.yaml").read_text())
    online = spec["phases"][1]
    online["budget"] = {"env_steps": 600}
    online["sweep"] = [{"label": "fast", "actor_lr": 0.001}, {"label": "slow", "actor_lr": 0.0001}]
    (tmp_path / "s3.yaml").write_text(yaml.safe_dump(spec))
    # The job's nodes reach the bucket with the same variables; the staging folders go to tmp.
    env = {**s3_server.env, "MPRL_CACHE_DIR": str(tmp_path / "cache"), "MPRL_LINEAGE_SYNC_S": "1"}
    sid, _ = cluster.submit("mprl", "run", str(tmp_path / "s3.yaml"), "--storage-path", runs, env=env)
    deadline = time.monotonic() + 200
    while True:  # stop once the bucket's lineage shows online results: the run is partly done
        logs = cluster.server.logs(sid)
        store = _remote_lineage(run_uri := run_location(logs)) if _run_lines(logs) else None
        if store is not None:
            with store:
                if any(m["node_id"] == "online" for m in store.metrics()):
                    break
        assert cluster.server.job(sid)["status"] in ("PENDING", "RUNNING"), logs
        assert time.monotonic() < deadline, f"no online results in the bucket after 200s:\n{logs}"
        time.sleep(1)
    _stop_job(cluster, sid)
    with open_lineage(run_uri) as store:
        assert store.run()["status"] == "stopped", store.run()
        assert store.node("online")["status"] != "succeeded", "the job was stopped after the run had finished"
    resume_sid, out = cluster.submit("mprl", "resume", run_uri.rsplit("/", 1)[1], "--storage-path", runs, env=env, wait=True)
    assert f"Job '{resume_sid}' succeeded" in out, out[-3000:]
    assert "[offline] finished in an earlier attempt; kept" in out, out[-3000:]
    with open_lineage(run_uri) as store:
        assert store.run()["status"] == "succeeded" and [n["status"] for n in store.nodes()] == ["succeeded"] * 2
        ckpts = store.checkpoints()
        assert {c["phase"] for c in ckpts} == {"offline", "online"}
        for c in ckpts:  # every checkpoint the lineage names is in the bucket, by URI
            assert store.abs(c["path"]).startswith(run_uri + "/") and storage.exists(storage.join(store.abs(c["path"]), "rllib_checkpoint.json"))
        _assert_trials_on_both_nodes(cluster, store, store.trials("online"))
        selected = {c["checkpoint_id"] for c in store.checkpoints(selected_only=True)}
        assert selected <= {v["checkpoint_id"] for v in store.videos()}, "every selected checkpoint has its video"
        for v in store.videos():
            assert storage.exists(store.abs(v["path"])) and store.abs(v["path"]).startswith(run_uri + "/videos/")
    for name in ("pipeline.json", "summary.json", "online/sweep.md", "online/transfer_report.json"):
        assert storage.exists(storage.join(run_uri, name)), f"{name} is not in the bucket"
    assert run_uri.startswith(runs + "/") and not (cluster.storage / run_uri.rsplit("/", 1)[1]).exists()


def test_failing_jobs_end_failed_with_one_clear_error(cluster, failing_jobs):
    for what, (sid, expected) in failing_jobs.items():
        info = cluster.server.wait(sid, timeout=120)
        logs = cluster.server.logs(sid)
        assert info["status"] == "FAILED", f"{what}: {info['status']}\n{logs}"
        assert "exit code 2" in info["message"], info["message"]
        errors = [ln for ln in logs.splitlines() if ln.startswith("mprl: error: ")]
        assert errors and expected in logs, f"{what}: no clear error in the job's logs:\n{logs}"
        assert "Traceback" not in logs, f"{what}: a traceback instead of one message:\n{logs}"
        storage = Path(info["entrypoint"].split("--storage-path ")[1])
        assert not storage.exists() or not any(storage.iterdir()), "a failed validation must not create a run folder"


def test_stop_sh_stops_the_cluster(cluster):
    assert marked_pids(cluster.dir), "the cluster's processes should carry the MPRL_CLUSTER_DIR marker"
    out = subprocess.run([CLUSTER / "stop.sh", "--dir", cluster.dir], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert marked_pids(cluster.dir) == []
    with pytest.raises((urllib.error.URLError, OSError)):
        cluster.server.get("/api/version", timeout=5)
