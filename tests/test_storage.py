"""Remote storage (mprl/storage.py and the lineage on a URI) against a real S3 HTTP server.

The server is moto's (tests/conftest.py: s3_server); pyarrow's S3 client reaches it through
AWS_ENDPOINT_URL, as it would reach MinIO or AWS. A full pipeline on S3 — Ray job, two
nodes, stop and resume — is in tests/test_cluster.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mprl import storage
from mprl.lineage import LineageError, LineageStore, find_run, list_runs, open_lineage

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bucket(s3_server) -> str:
    return s3_server.bucket("mprl-storage-test")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MPRL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_uri_paths():
    assert storage.join("s3://b/runs", "r1", "videos/x.mp4") == "s3://b/runs/r1/videos/x.mp4"
    assert storage.join("s3://b/runs/?region=eu-west-1", "r1") == "s3://b/runs/r1?region=eu-west-1"
    assert storage.join("/data/runs", "r1") == "/data/runs/r1"
    assert storage.dirname("s3://b/runs/r1") == "s3://b/runs" and storage.dirname("/data/runs/r1/") == "/data/runs"
    assert storage.is_uri("gs://b/x") and not storage.is_uri("./mprl_results") and not storage.is_uri("/abs/path")
    assert storage.fs_path("s3://b/runs/r1") == "b/runs/r1" and storage.fs_path("/x/y") == "/x/y"


def test_upload_download_move_and_list(bucket, tmp_path):
    src = tmp_path / "ck"
    (src / "sub").mkdir(parents=True)
    (src / "a.bin").write_bytes(os.urandom(3000))
    (src / "sub" / "b.txt").write_text("b")
    uri = storage.join(bucket, "t1", "checkpoint_000001")
    assert not storage.exists(uri)
    storage.upload(src, uri)
    assert storage.exists(uri) and storage.exists(storage.join(uri, "sub/b.txt"))
    assert storage.list_names(uri) == ["a.bin", "sub"] and storage.list_dirs(uri) == ["sub"]
    assert storage.list_names(storage.join(bucket, "nothing-here")) == []
    back = storage.download(uri, tmp_path / "back")
    assert (back / "a.bin").read_bytes() == (src / "a.bin").read_bytes() and (back / "sub" / "b.txt").read_text() == "b"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".back")], "a download leaves no temporary folder"
    storage.move(storage.join(bucket, "t1"), storage.join(bucket, "t1.moved"))
    assert not storage.exists(uri) and storage.exists(storage.join(bucket, "t1.moved", "checkpoint_000001", "a.bin"))
    with pytest.raises(storage.StorageError, match="does not exist"):
        storage.download(storage.join(bucket, "missing"), tmp_path / "x")


def test_remote_checkpoint_is_downloaded_once(bucket, tmp_path, cache):
    from mprl.errors import CheckpointError

    src = tmp_path / "checkpoint_000003"
    src.mkdir()
    (src / "rllib_checkpoint.json").write_text("{}")
    uri = storage.join(bucket, "t2", "checkpoint_000003")
    storage.upload(src, uri)
    local = storage.local_checkpoint(uri)
    assert local.name == "checkpoint_000003" and (local / "rllib_checkpoint.json").is_file()
    assert cache in local.parents
    (local / "marker").write_text("cached")
    assert (storage.local_checkpoint(uri) / "marker").exists(), "a second use must not download again"
    with pytest.raises(CheckpointError, match="does not exist"):
        storage.local_checkpoint(storage.join(bucket, "t2", "checkpoint_999999"))
    # A checkpoint reader names the URI's problem, not a cache folder: no module state here.
    from algorithms.common.checkpoints import read_module_state

    with pytest.raises(CheckpointError, match="not an RLlib algorithm checkpoint"):
        read_module_state(uri)


def test_missing_bucket_is_one_clear_error(s3_server):
    with pytest.raises(storage.StorageError) as e:
        storage.check_writable("s3://no-such-bucket-mprl/runs")
    assert "not writable" in str(e.value) and "bucket exists" in str(e.value) and "AWS_ENDPOINT_URL" in str(e.value)


def _lineage_in(bucket: str, run_id: str, tmp: Path) -> str:
    """A run's lineage as the scheduler keeps one for remote storage: staged locally, snapshot uploaded."""
    root = storage.join(bucket, "runs", run_id)
    store = LineageStore(tmp / run_id, root=root)
    store.create_run(run_id, "demo", {"name": "demo"}, storage.join(bucket, "runs"))
    node = {"node_id": "online", "run_id": run_id, "phase": "online", "ordinal": 0, "algorithm": "td3", "paradigm": "online",
            "env": "Hopper-v5", "budget_unit": "env_steps", "budget_value": 1000, "status": "succeeded"}
    store.upsert_node(node)
    # Tune reports remote checkpoints by bucket path, without the scheme.
    cid = store.record_checkpoint(run_id=run_id, node=node, trial_id="t0", path=f"{storage.fs_path(root)}/online/trial/checkpoint_000001",
                                  metrics={"training_iteration": 1, "evaluation_return": 5.0})
    store.record_video(cid, storage.join(root, "videos", f"{cid}.mp4"))
    (tmp / "snap").mkdir(exist_ok=True)
    storage.upload(store.snapshot(tmp / "snap" / "lineage.sqlite"), storage.join(root, "lineage.sqlite"))
    store.close()
    return root


def test_lineage_in_remote_storage(bucket, tmp_path):
    root = _lineage_in(bucket, "demo-1", tmp_path)
    _lineage_in(bucket, "demo-2", tmp_path)
    runs = storage.join(bucket, "runs")
    assert find_run("demo-1", runs) == root and find_run(root) == root
    with open_lineage(root) as store:
        (c,) = store.checkpoints()
        assert c["path"] == "online/trial/checkpoint_000001", "paths are stored relative to the run"
        assert store.abs(c["path"]) == f"{root}/online/trial/checkpoint_000001"
        assert store.abs(store.videos()[0]["path"]) == f"{root}/videos/{c['checkpoint_id']}.mp4"
    assert [r["run_id"] for r in list_runs(runs)] == ["demo-1", "demo-2"]
    with pytest.raises(LineageError) as e:
        find_run("demo-3", runs)
    assert "demo-1, demo-2" in str(e.value)


def _mprl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mprl.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=os.environ.copy())


def test_cli_on_remote_storage(bucket, tmp_path):
    root = _lineage_in(bucket, "demo-cli", tmp_path / "stage")
    runs = storage.dirname(root)
    show = _mprl("lineage", "show", "demo-cli", "--storage-path", runs, cwd=tmp_path)
    assert show.returncode == 0 and "run demo-cli (demo)" in show.stdout, show.stdout + show.stderr
    pull = _mprl("pull", "demo-cli", "--storage-path", runs, "--to", str(tmp_path / "local"), cwd=tmp_path)
    assert pull.returncode == 0, pull.stdout + pull.stderr
    with LineageStore(tmp_path / "local" / "demo-cli", readonly=True) as store:
        assert store.abs(store.checkpoints()[0]["path"]) == tmp_path / "local" / "demo-cli" / "online/trial/checkpoint_000001"
    # Bad input: one message with the fix, no traceback, nothing written.
    bad = _mprl("run", str(REPO / "cluster" / "smoke.yaml"), "--storage-path", "s3://no-such-bucket-mprl/runs", cwd=tmp_path)
    assert bad.returncode == 2 and "mprl: error: storage_path 's3://no-such-bucket-mprl/runs' is not writable" in bad.stderr, bad.stderr
    (tmp_path / "stage" / "a-file").write_text("")
    not_a_folder = _mprl("run", str(REPO / "cluster" / "smoke.yaml"), "--storage-path", str(tmp_path / "stage" / "a-file" / "runs"), cwd=tmp_path)
    assert not_a_folder.returncode == 2 and "a-file is not a writable folder. Pass another --storage-path" in not_a_folder.stderr, not_a_folder.stderr
    serve = _mprl("serve", "--storage-path", runs, cwd=tmp_path)
    assert serve.returncode == 2 and f"mprl pull RUN --storage-path {runs}" in serve.stderr, serve.stderr
    for out in (bad, not_a_folder, serve):
        assert "Traceback" not in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "local", "stage"], "no run folder was written"


def test_lineage_journal_on_network_filesystems(tmp_path):
    from mprl.lineage.store import journal_mode

    mounts = [["/", "overlay"], ["/mnt/efs", "nfs4"], ["/mnt/gcs", "fuse.gcsfuse"], ["/mnt/efs/local", "ext4"]]
    assert journal_mode(Path("/mnt/efs/runs/r1"), mounts) == "DELETE"  # other hosts read it: no shared-memory WAL
    assert journal_mode(Path("/mnt/gcs/runs"), mounts) == "DELETE"
    assert journal_mode(Path("/mnt/efs/local/runs"), mounts) == "WAL"  # the longest mount point decides
    assert journal_mode(Path("/home/me/runs"), mounts) == "WAL"
    with LineageStore(tmp_path / "run") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0].upper() == journal_mode(tmp_path)
