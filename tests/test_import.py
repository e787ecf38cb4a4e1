"""`mprl import` and checkpoint ids wherever a checkpoint is accepted, for real: a checkpoint of
the demo run (tests/test_serve.py) imported into another storage path, evaluated on
InvertedPendulum-v5, then used by id in `mprl transfer check`, `mprl validate` and a real run's
`init_from`, whose lineage names it as the parent. Bad imports fail cleanly and leave nothing.
Also `mprl runs` and `mprl --version`.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_cli import mprl
from test_serve import release_app, served_app

from mprl.lineage import LineageStore


@pytest.fixture(scope="module")
def demo(request, ray_local, tmp_path_factory):
    yield served_app(ray_local, tmp_path_factory, server=False)
    release_app(request)


@pytest.fixture(scope="module")
def imported(demo, minari_root, tmp_path_factory) -> dict[str, Any]:
    storage = tmp_path_factory.mktemp("imports")
    with LineageStore(demo["run_dir"], readonly=True) as store:
        source = store.abs(store.checkpoint(demo["checkpoints"][-1])["path"])
    work = tmp_path_factory.mktemp("elsewhere")
    elsewhere = work / "my-pendulum-policy"
    shutil.copytree(source, elsewhere)  # a checkpoint made outside any mprl run
    proc = mprl("import", str(elsewhere), "--name", "pendulum", "--episodes", "2", "--storage-path", str(storage), minari=minari_root, cwd=work)
    assert proc.returncode == 0, proc.stderr
    (cid,) = re.findall(r"as (ck-[0-9a-f]+)", proc.stdout)
    return {"storage": storage, "checkpoint_id": cid, "source": elsewhere, "stdout": proc.stdout, "work": work}


def test_import_records_the_checkpoint_in_a_lineage_of_its_own(imported, minari_root):
    (run_dir,) = [p for p in imported["storage"].iterdir() if p.is_dir()]
    with LineageStore(run_dir, readonly=True) as store:
        run, (node,), (ck,) = store.run(), store.nodes(), store.checkpoints()
        assert run["status"] == "succeeded" and json.loads(run["spec_json"])["imported"]["source"] == str(imported["source"].resolve())
        assert node["phase"] == "import" and node["algorithm"] == "td3" and node["env"] == "InvertedPendulum-v5"
        assert ck["checkpoint_id"] == imported["checkpoint_id"] and ck["selected"] and ck["evaluation_return"] > 0
        assert (Path(store.abs(ck["path"])) / "learner_group").exists()  # a copy: the original may move
    proc = mprl("runs", "--storage-path", str(imported["storage"]), minari=minari_root, cwd=imported["work"])
    assert proc.returncode == 0 and run_dir.name in proc.stdout and "import:succeeded" in proc.stdout
    proc = mprl("resume", run_dir.name, "--storage-path", str(imported["storage"]), minari=minari_root, cwd=imported["work"])
    assert proc.returncode == 2 and "is an import" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", ["missing", "corrupt", "wrong_env"])
def test_a_bad_import_says_why_and_leaves_nothing(case, imported, minari_root, tmp_path):
    storage = tmp_path / "runs"
    ck = imported["source"]
    extra: list[str] = []
    if case == "missing":
        ck = tmp_path / "nope"
    elif case == "corrupt":
        ck = tmp_path / "broken"
        shutil.copytree(imported["source"], ck)
        for f in ck.rglob("*.pkl"):
            f.write_bytes(b"not a pickle")
    else:
        extra = ["--env", "Hopper-v5"]
    proc = mprl("import", str(ck), "--storage-path", str(storage), *extra, minari=minari_root, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("mprl: error:") and "Traceback" not in proc.stderr, proc.stderr
    assert {"missing": "does not exist", "corrupt": "cannot read", "wrong_env": "Hopper-v5 has"}[case] in proc.stderr, proc.stderr
    assert not storage.exists() or not any(storage.iterdir())


def test_a_checkpoint_id_works_in_transfer_check_validate_and_init_from(imported, minari_root, ray_local):
    from mprl.pipeline.driver import run_pipeline
    from mprl.spec import load_pipeline

    storage, cid, work = imported["storage"], imported["checkpoint_id"], imported["work"]
    proc = mprl("transfer", "check", cid, "--to", "td3", "--config", "hidden=[64,64]", "--roles-only", "--storage-path", str(storage),
                minari=minari_root, cwd=work)
    assert proc.returncode == 0 and "copied" in proc.stdout, proc.stderr

    spec_file = work / "from-import.yaml"
    spec_file.write_text(f"""\
name: from-import
storage_path: {storage}
phases:
  - name: tune
    algorithm: td3
    env: InvertedPendulum-v5
    init_from: {{checkpoint: {cid}}}
    budget: {{env_steps: 200}}
    config: {{hidden: [64, 64]}}
    evaluation: {{interval: 200, episodes: 2}}
""")
    proc = mprl("validate", str(spec_file), minari=minari_root, cwd=work)
    assert proc.returncode == 0 and "valid" in proc.stdout, proc.stderr
    assert not any(p.name.startswith("from-import") for p in storage.iterdir()), "validate starts nothing"
    bad = work / "bad.yaml"
    bad.write_text(spec_file.read_text().replace(cid, "ck-00000000aa"))
    proc = mprl("validate", str(bad), minari=minari_root, cwd=work)
    assert proc.returncode == 2 and "No checkpoint 'ck-00000000aa'" in proc.stderr and "Traceback" not in proc.stderr

    result = run_pipeline(load_pipeline(spec_file), write=lambda _line: None)
    with LineageStore(result.run_dir, readonly=True) as store:
        (node,) = store.nodes()
        assert node["status"] == "succeeded" and node["parent_checkpoint_id"] == cid
        spec = json.loads(store.run()["spec_json"])
        assert spec["phases"][0]["init_from"]["checkpoint"].endswith("import/checkpoint")  # the recorded spec names the folder
    proc = mprl("lineage", "show", result.run_id, "--storage-path", str(storage), minari=minari_root, cwd=work)
    assert f"from {cid} (outside this run)" in proc.stdout, proc.stdout


def test_version(minari_root, tmp_path):
    from mprl import __version__

    proc = mprl("--version", minari=minari_root, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith(f"mprl {__version__}") and "ray 2." in proc.stdout
