"""The phase scheduler actor on a real local Ray with Tune: multi-phase pipelines across
algorithms and paradigms, transition-point branching, two runs at once, and resuming a run
whose scheduler was killed in the middle of phase 2."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mprl.lineage import LineageStore
from mprl.runner import resume_run, run_pipeline, start_scheduler
from mprl.scheduler import PhaseStopper, select_checkpoints
from mprl.spec import parse_pipeline

ENV = "Hopper-v5"
DATASET = {"id": "mprl/hopper/random-v0", "build": {"quality": "random", "size": 3000}}


def phase(name: str, algorithm: str, budget: dict, init_from: str | None = None, **extra: Any) -> dict:
    interval = next(iter(budget.values())) // 2
    p = {"name": name, "algorithm": algorithm, "env": ENV, "budget": budget, "init_from": init_from,
         "evaluation": {"interval": interval, "episodes": 2}, "tune": {"seeds": [0]}}
    if algorithm in ("td3_bc",):
        p["dataset"] = DATASET
    return {**p, **extra}


def four_phases(storage: Path) -> dict:
    """offline → online → offline → online, with three algorithms (TD3+BC → SAC across actor kinds)."""
    return {"name": "four", "storage_path": str(storage), "videos": {"selected": False}, "phases": [
        phase("off1", "td3_bc", {"updates": 200}),
        phase("on1", "td3", {"env_steps": 200}, "off1", config={"utd": 1}),
        phase("off2", "td3_bc", {"updates": 200}, "on1"),
        phase("on2", "sac", {"env_steps": 120}, "off2"),  # warm-started: updates from its first env step
    ]}


def transition_sweep(storage: Path) -> dict:
    """Phase 2 seeded from phase-1 checkpoints at 50% and 100% of its budget: two branches."""
    return {"name": "branches", "storage_path": str(storage), "videos": {"selected": False}, "phases": [
        phase("offline", "td3_bc", {"updates": 200}, select={"at": [0.5, 1.0]}),
        phase("online", "td3", {"env_steps": 200}, "offline", config={"utd": 1}),
    ]}


@pytest.fixture(scope="module")
def two_runs(ray_local, minari_root, tmp_path_factory):
    """Both pipelines at once on one Ray cluster and one storage folder."""
    storage = tmp_path_factory.mktemp("sched_runs")
    specs = {"four": parse_pipeline(four_phases(storage)), "branches": parse_pipeline(transition_sweep(storage))}
    from mprl.runner import validate_inputs

    validate_inputs(specs["four"], lambda _: None)  # build the shared dataset once, before both start
    out: dict[str, Any] = {}
    lines: dict[str, list[str]] = {k: [] for k in specs}

    def go(key: str) -> None:
        try:
            out[key] = run_pipeline(specs[key], write=lines[key].append)
        except BaseException as e:  # noqa: BLE001 - reported by the tests
            out[key] = e

    threads = [threading.Thread(target=go, args=(k,)) for k in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    return out, lines, storage


def test_four_phase_pipeline_across_algorithms_and_paradigms(two_runs):
    out, lines, _ = two_runs
    result = out["four"]
    assert not isinstance(result, BaseException), lines["four"][-20:]
    assert [(p.phase, p.algorithm, p.paradigm) for p in result.phases] == [
        ("off1", "td3_bc", "offline"), ("on1", "td3", "online"), ("off2", "td3_bc", "offline"), ("on2", "sac", "online")]
    with LineageStore(result.run_dir, readonly=True) as store:
        assert store.run()["status"] == "succeeded"
        nodes = {n["node_id"]: n for n in store.nodes()}
        assert list(nodes) == ["off1", "on1", "off2", "on2"]
        assert all(n["status"] == "succeeded" for n in nodes.values())
        assert [nodes[n]["axis"] for n in nodes] == ["num_updates", "num_env_steps", "num_updates", "num_env_steps"]
        # Each phase is seeded by the selected checkpoint of the one before it.
        for prev, cur in [("off1", "on1"), ("on1", "off2"), ("off2", "on2")]:
            parent = store.checkpoint(nodes[cur]["parent_checkpoint_id"])
            assert parent["node_id"] == prev and parent["selected"] == 1
            assert store.abs(parent["path"]).joinpath("rllib_checkpoint.json").is_file()
        # Metrics on each paradigm's own axis, every iteration recorded once.
        for node_id, axis, budget in [("off1", "num_updates", 200), ("on1", "num_env_steps", 200), ("on2", "num_env_steps", 120)]:
            rows = store.metrics(node_id=node_id)
            assert [r[axis] for r in rows][-1] == budget
            assert len({(r["trial_id"], r["iteration"]) for r in rows}) == len(rows)
        assert {t["node_id"] for t in store.transfers()} == {"on1", "off2", "on2"}
        report = json.loads(next(t for t in store.transfers() if t["node_id"] == "on2")["report_json"])
        assert report["possible"] and report["target"]["algorithm"] == "sac"
        ck = store.checkpoints(node_id="on2")[0]
        assert (ck["algorithm"], ck["paradigm"], ck["dataset"]) == ("sac", "online", None)
        assert ck["config_hash"] and ck["code_version"].startswith("0.")
        assert store.checkpoints(node_id="off1")[0]["dataset"] == DATASET["id"]


def test_transition_points_branch_the_lineage(two_runs):
    out, lines, _ = two_runs
    result = out["branches"]
    assert not isinstance(result, BaseException), lines["branches"][-20:]
    with LineageStore(result.run_dir, readonly=True) as store:
        selected = store.checkpoints(node_id="offline", selected_only=True)
        assert sorted((c["selection"], c["num_updates"]) for c in selected) == [("at 100%", 200), ("at 50%", 100)]
        branches = [n for n in store.nodes() if n["phase"] == "online"]
        assert [n["node_id"] for n in branches] == ["online.b0", "online.b1"]
        assert {n["parent_checkpoint_id"] for n in branches} == {c["checkpoint_id"] for c in selected}
        assert [n["branch"] for n in branches] == ["offline at 50%", "offline at 100%"]
    table = (Path(result.run_dir) / "online" / "branches.md").read_text()
    assert "online.b0 (offline at 50%)" in table and "online.b1 (offline at 100%)" in table
    assert any("branch table" in line for line in lines["branches"])


def test_two_runs_at_once_do_not_mix(two_runs):
    out, _, storage = two_runs
    dirs = {k: Path(r.run_dir) for k, r in out.items()}
    assert dirs["four"] != dirs["branches"] and all(d.parent == storage for d in dirs.values())
    for key, run_dir in dirs.items():
        with LineageStore(run_dir, readonly=True) as store:
            assert store.run()["name"] == key
            for c in store.checkpoints():
                assert store.abs(c["path"]).resolve().is_relative_to(run_dir.resolve())
            trial_ids = {t["trial_id"] for t in store.trials()}
            assert {m["trial_id"] for m in store.metrics()} <= trial_ids


def test_lineage_cli_on_a_real_run(two_runs, capsys):
    from mprl.cli import main

    out, _, storage = two_runs
    run_id = out["branches"].run_id
    assert main(["lineage", "show", run_id, "--storage-path", str(storage)]) == 0
    text = capsys.readouterr().out
    assert "online.b0" in text and "online.b1" in text and "td3_bc" in text


def kill_in_phase_two(storage: Path) -> dict:
    return {"name": "killme", "storage_path": str(storage), "videos": {"selected": False}, "phases": [
        phase("offline", "td3_bc", {"updates": 200}),
        {**phase("online", "td3", {"env_steps": 1200}, "offline", config={"utd": 1}), "evaluation": {"interval": 150, "episodes": 1}},
    ]}


def test_resume_after_the_scheduler_is_killed_in_phase_two(ray_local, minari_root, tmp_path):
    import ray

    spec = parse_pipeline(kill_in_phase_two(tmp_path))
    from mprl.runner import new_run_id, validate_inputs

    validate_inputs(spec, lambda _: None)
    run_id = new_run_id(spec.name)
    run_dir = tmp_path / run_id
    actor = start_scheduler(spec, run_id, run_dir)
    actor.run.remote()
    deadline = time.time() + 600
    while time.time() < deadline:  # until phase 2 has trained past its second evaluation
        time.sleep(1)
        if (run_dir / "lineage.sqlite").exists():
            with LineageStore(run_dir, readonly=True) as store:
                if len(store.metrics(node_id="online")) >= 2:
                    before = {"off": store.node("offline"), "trials": store.trials(), "metrics": len(store.metrics(node_id="online"))}
                    break
    else:
        pytest.fail("phase 2 never reported two evaluations")
    ray.kill(actor)
    time.sleep(2)
    offline_trials = sorted(p.name for p in (run_dir / "offline").iterdir() if p.is_dir())

    lines: list[str] = []
    result = resume_run(run_id, str(tmp_path), write=lines.append)
    assert any("[offline] finished in an earlier attempt; kept" in line for line in lines)
    assert any("[online] resuming its Tune experiment" in line for line in lines)
    assert sorted(p.name for p in (run_dir / "offline").iterdir() if p.is_dir()) == offline_trials  # phase 1 not re-run
    with LineageStore(run_dir, readonly=True) as store:
        assert store.run()["status"] == "succeeded"
        assert store.node("offline")["started_at"] == before["off"]["started_at"]
        assert store.node("offline")["ended_at"] == before["off"]["ended_at"]
        assert [n["node_id"] for n in store.nodes()] == ["offline", "online"]
        online_trials = [t["trial_id"] for t in store.trials("online")]
        assert online_trials == [t["trial_id"] for t in before["trials"] if t["node_id"] == "online"]  # restored, not restarted
        rows = store.metrics(node_id="online")
        assert len(rows) > before["metrics"] and rows[-1]["num_env_steps"] == 1200
        assert len({r["iteration"] for r in rows}) == len(rows)
        paths = [c["path"] for c in store.checkpoints()]
        assert len(paths) == len(set(paths))
    assert result.phases[-1].env_steps == 1200


def test_resume_of_an_unknown_run_is_a_clear_error(tmp_path):
    from mprl.lineage import LineageError

    with pytest.raises(LineageError, match="No run 'nope'"):
        resume_run("nope", str(tmp_path))


# ---- selection and stop rules, on plain data
def _ckpts(trial: str, values: list[float], step: int = 100) -> list[tuple[str, dict]]:
    return [(f"{trial}/c{i}", {"trial_id": trial, "normalized_score": v, "num_updates_lifetime": (i + 1) * step}) for i, v in enumerate(values)]


def _phase(select: Any) -> Any:
    return parse_pipeline({"name": "x", "phases": [phase("off", "td3_bc", {"updates": 400}, select=select)]}).phases[0]


def test_selection_rules():
    cands = _ckpts("a", [1, 5, 3, 2]) + _ckpts("b", [4, 4, 6, 0])
    key = "num_updates_lifetime"
    assert select_checkpoints(cands, _phase("best"), "normalized_score", key) == [("b/c2", "best")]
    assert select_checkpoints(cands, _phase("last"), "normalized_score", key) == [("a/c3", "last")]
    assert select_checkpoints(cands, _phase({"top_k": 3}), "normalized_score", key) == [("b/c2", "top 1/3"), ("a/c1", "top 2/3"), ("b/c0", "top 3/3")]
    # at 50% (200 updates): a=5, b=4 → a; at 100%: a=2, b=0 → a; at 150 updates (absolute): first ≥150 → c1 of each
    assert select_checkpoints(cands, _phase({"at": [0.5, 1.0, 150]}), "normalized_score", key) == [
        ("a/c1", "at 50%"), ("a/c3", "at 100%"), ("a/c1", "at 150 updates")]


def test_transition_points_must_keep_checkpoints_and_fit_the_budget():
    from mprl.errors import SpecError

    data = {"name": "x", "phases": [phase("off", "td3_bc", {"updates": 400}, select={"at": [0.5, 500]}, tune={"checkpoint_num_to_keep": 2})]}
    with pytest.raises(SpecError) as e:
        parse_pipeline(data)
    assert "beyond the budget (400)" in str(e.value) and "needs every checkpoint kept" in str(e.value)


def test_stop_rules():
    s = PhaseStopper("evaluation_return", "max", score=100.0, plateau=None, min_delta=0.0)
    assert not s("t", {"evaluation_return": 50.0}) and s("t", {"evaluation_return": 100.0})
    p = PhaseStopper("evaluation_return", "max", score=None, plateau=2, min_delta=1.0)
    assert [p("t", {"evaluation_return": v}) for v in (10, 12, 12.5, 12.9)] == [False, False, False, True]
    assert "plateau" in p.reasons["t"]
    assert PhaseStopper("evaluation_return", "max", None, None, 0.0)("t", {"budget_done": True})


def test_a_failed_trial_is_retried_from_its_last_checkpoint(ray_local, minari_root, tmp_path):
    """Kill a trial's process mid-phase: Tune's FailureConfig restarts it from its last
    checkpoint (with its replay buffer: `checkpoint_replay`), and the lineage keeps one trial
    with one row per iteration."""
    import os
    import signal

    spec = parse_pipeline({"name": "crash", "storage_path": str(tmp_path), "videos": {"selected": False}, "phases": [
        {**phase("online", "td3", {"env_steps": 900}, config={"utd": 1, "checkpoint_replay": True, "random_steps": 300, "learning_starts": 300}), "evaluation": {"interval": 150, "episodes": 1}}]})
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(result=run_pipeline(spec, write=lambda _: None)))
    thread.start()
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline:
        time.sleep(0.5)
        for db in tmp_path.glob("*/lineage.sqlite"):
            with LineageStore(db.parent, readonly=True) as store:
                rows = store.metrics(node_id="online")
            if len(rows) >= 2:
                killed = json.loads(rows[-1]["data_json"])["pid"]
                os.kill(killed, signal.SIGKILL)
    assert killed is not None, "phase never reported two evaluations"
    thread.join(timeout=600)
    result = out["result"]
    with LineageStore(result.run_dir, readonly=True) as store:
        (trial,) = store.trials("online")
        assert trial["status"] == "succeeded"
        rows = store.metrics(trial_id=trial["trial_id"])
        assert [r["iteration"] for r in rows] == list(range(1, 7))
        assert [r["num_env_steps"] for r in rows] == [150 * i for i in range(1, 7)]
        pids = [json.loads(r["data_json"])["pid"] for r in rows]
        assert killed in pids and pids[-1] != killed  # the retry ran in a new process
        # Every transition collected before the kill came back with the checkpoint: without
        # it, the first row after the restart would hold one iteration's 150 transitions.
        assert [json.loads(r["data_json"])["replay_size"] for r in rows] == [150 * i for i in range(1, 7)]


def test_resume_of_a_phase_stopped_before_tune_created_its_trials(ray_local, tmp_path):
    """A stop can come after Tune's first experiment-state save but before its trials exist (CI
    hit it: a cluster job stopped between phases). Tune's tuner.pkl keeps no param space, so the
    resumed experiment must be given it again, or its trials start with an empty config (RLlib:
    "`config.env` is not provided")."""
    import shutil
    import sqlite3

    spec = parse_pipeline({"name": "early", "storage_path": str(tmp_path), "videos": {"selected": False}, "phases": [
        {"name": "online", "algorithm": "td3", "env": "InvertedPendulum-v5", "budget": {"env_steps": 100},
         "evaluation": {"interval": 100, "episodes": 1}, "config": {"utd": 1, "hidden": [16, 16], "random_steps": 50, "learning_starts": 50}, "tune": {"seeds": [0]}}]})
    first = run_pipeline(spec, write=lambda _: None)
    run_dir, exp = Path(first.run_dir), Path(first.run_dir) / "online"
    # The state of a run stopped right after Tune's first save: an experiment with no trials yet.
    for p in exp.iterdir():
        if p.is_dir():
            shutil.rmtree(p)
        elif p.name.startswith("basic-variant-state"):
            p.unlink()
    states = sorted(exp.glob("experiment_state-*.json"))
    for p in states[1:]:
        p.unlink()
    state = json.loads(states[0].read_text())
    state["trial_data"] = []
    states[0].write_text(json.dumps(state))
    with sqlite3.connect(run_dir / "lineage.sqlite") as db:
        for table in ("checkpoints", "metrics", "trials", "videos"):
            db.execute(f"DELETE FROM {table}")
        db.execute("UPDATE nodes SET status = 'stopped', result_json = NULL")
        db.execute("UPDATE runs SET status = 'stopped'")
    lines: list[str] = []
    result = resume_run(first.run_id, str(tmp_path), write=lines.append)
    assert any("[online] resuming its Tune experiment" in line for line in lines), lines
    with LineageStore(run_dir, readonly=True) as store:
        assert store.run()["status"] == "succeeded"
        (trial,) = store.trials("online")
        assert trial["seed"] == 0 and trial["status"] == "succeeded"
    assert result.phases[-1].env_steps == 100 and result.phases[-1].evaluation_return is not None
