"""Sim → real in one pipeline on a real local Ray with Tune: `tune_configs/sim_to_real.yaml` at
tiny budgets — TD3 on Hopper-v5, SAC on mprl/Hopper-real-v0 warm-started from it through the
checker, SAC from scratch on the same real context. The real phase's first evaluation is the
transferred policy's return *in the real context*; the lineage, `mprl lineage show`, the
curves, videos and rollouts carry the context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REAL = "mprl/Hopper-real-v0"
EVAL = {"episodes": 2, "seed": 321}


def tiny(storage: Path) -> dict:
    data = yaml.safe_load(Path("tune_configs/sim_to_real.yaml").read_text())
    data.update(storage_path=str(storage), videos={"selected": False})
    sim, real, scratch = data["phases"]
    sim.update(budget={"env_steps": 300}, evaluation={"interval": 300, **EVAL}, config={"random_steps": 100, "learning_starts": 100})
    real.update(budget={"env_steps": 200}, evaluation={"interval": 100, **EVAL})
    scratch.update(budget={"env_steps": 200}, evaluation={"interval": 100, **EVAL}, config={"random_steps": 50, "learning_starts": 50})
    # PPO as a phase too: adapting the real SAC policy further with RLlib's PPO (SAC → PPO: actor carried, V fresh)
    data["phases"].append({"name": "real_ppo", "algorithm": "ppo", "env": REAL, "init_from": "real", "budget": {"env_steps": 128},
                           "evaluation": {"interval": 128, **EVAL},
                           "config": {"hidden": [256, 256], "activation": "relu", "train_batch_size_per_learner": 64, "minibatch_size": 32, "num_epochs": 1}})
    for phase in data["phases"]:
        phase["tune"] = {"seeds": [0]}
    return data


@pytest.fixture(scope="module")
def s2r(ray_local, tmp_path_factory):
    from mprl.runner import run_pipeline
    from mprl.spec import parse_pipeline

    spec = parse_pipeline(tiny(tmp_path_factory.mktemp("s2r")), source="sim_to_real.yaml")
    lines: list[str] = []
    return spec, run_pipeline(spec, write=lines.append), lines


def test_real_phase_starts_from_the_sim_policy_in_the_real_context(s2r):
    from mprl.evaluation import evaluate_policy
    from mprl.serve.policy import load_policy

    _, result, _ = s2r
    sim, real, scratch, _ = result.phases
    assert [p.algorithm for p in result.phases] == ["td3", "sac", "sac", "ppo"]
    assert (real.env_steps, scratch.env_steps) == (200, 200)
    # The sim checkpoint's deterministic policy, rolled out in the real context with the phase's
    # evaluation seeds, is exactly SAC's evaluation before its first update (TD3 → SAC is exact).
    sim_policy = load_policy(sim.checkpoint)
    on_real = evaluate_policy(sim_policy.act_one, REAL, EVAL["episodes"], EVAL["seed"]).mean
    assert real.initial_return == pytest.approx(on_real, rel=1e-4)
    assert on_real != pytest.approx(sim.evaluation_return, rel=1e-6)  # the context changes the return
    assert scratch.initial_return is None  # from scratch: no warm start
    report = json.loads((Path(result.run_dir) / "real" / "transfer_report.json").read_text())
    assert report["possible"] and report["policy"] == "exact"
    assert not (Path(result.run_dir) / "real_scratch" / "transfer_report.json").exists()


def test_lineage_records_the_context_and_says_sim_to_real(s2r):
    from mprl.lineage.curves import curve_data
    from mprl.lineage.render import export_json, tree_text
    from mprl.lineage.store import LineageStore

    _, result, _ = s2r
    store = LineageStore(result.run_dir, readonly=True)
    envs = {n["node_id"]: n["env"] for n in store.nodes()}
    assert envs == {"sim": "Hopper-v5", "real": REAL, "real_scratch": REAL, "real_ppo": REAL}
    text = tree_text(store)
    assert "env mprl/Hopper-real-v0 (Hopper-v5 with actuator gain ×0.9, torso mass ×1.3" in text
    assert "sim → real: from Hopper-v5" in text and text.count("sim → real") == 1
    nodes = {n["node_id"]: n for n in export_json(store)["nodes"]}
    assert nodes["real"]["env_context"]["changes"]["action_delay"] == 1 and not nodes["sim"]["env_context"]["variant"]
    panel = curve_data(store)["panels"][0]
    by_node = {n["node_id"]: n for n in panel["nodes"]}
    assert by_node["real"]["context"].startswith("Hopper-v5 with") and by_node["sim"]["context"] == "Hopper-v5"
    assert by_node["real"]["offset"] == 300 and by_node["real_scratch"]["offset"] == 0  # real after sim on the env-step axis


def test_ppo_phase_in_the_pipeline_starts_from_sac_with_a_fresh_value_function(s2r):
    _, result, _ = s2r
    ppo = result.phases[3]
    assert (ppo.algorithm, ppo.paradigm, ppo.env_steps) == ("ppo", "online", 128) and ppo.updates > 0
    report = json.loads((Path(result.run_dir) / "real_ppo" / "transfer_report.json").read_text())
    roles = {r["role"]: r for r in report["roles"]}
    assert report["possible"] and report["policy"] == "approximate"  # SAC's tanh-Gaussian mean → PPO's Gaussian mean
    assert roles["v"]["status"] == "initialised" and "not a Q-function" in roles["v"]["detail"]
    assert ppo.initial_return is not None  # evaluated in the real context before its first update


def test_video_and_rollouts_run_in_the_real_context(s2r, tmp_path):
    from mprl.envs import registered_env_id
    from mprl.evaluation import evaluate_policy
    from mprl.serve.policy import load_policy
    from mprl.video import record_video, rollouts

    _, result, _ = s2r
    real = result.phases[1]
    video = record_video(real.checkpoint, tmp_path / "real.mp4", steps=20)
    assert video["env"] == REAL and video["steps"] == 20 and (tmp_path / "real.mp4").stat().st_size > 0
    policy = load_policy(real.checkpoint)
    assert policy.env == REAL
    sim_id = registered_env_id("Hopper-v5")
    out_real = rollouts(policy, None, [321, 322])  # the checkpoint's own context
    out_sim = rollouts(policy, sim_id, [321, 322])  # the same policy in simulation
    assert out_real["env"] == REAL and out_sim["env"] == "Hopper-v5"
    assert out_real["returns"] == pytest.approx(evaluate_policy(policy.act_one, REAL, 2, 321).returns)
    assert out_real["returns"] != out_sim["returns"]
