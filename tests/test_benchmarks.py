"""`mprl bench learner` compares like with like: the plain PyTorch loop and the RLlib learner
of an algorithm make the same updates from the same state and minibatches, and the command
runs with tiny sizes and prints one JSON object keyed by algorithm."""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import pytest
import torch

ENV = "Hopper-v5"


@pytest.fixture(scope="module")
def random_dataset(minari_root):
    from mprl.datasets import build_dataset

    return build_dataset(ENV, "random", size=1000, seed=0, dataset_id="mprl/hopper/bench-test-v0", overwrite=True, progress=None)


def _config(dataset: str, updates: int):
    from algorithms.registry import discover

    return (discover()["td3_bc"].config_class()().environment(ENV)
            .training(paradigm="offline", dataset=dataset, updates_per_iteration=updates, eval_episodes=0,
                      train_batch_size_per_learner=32, hidden=[16, 16]))


def test_plain_loop_and_rllib_learner_make_the_same_updates(ray_local, random_dataset):
    from ray.rllib.core import DEFAULT_MODULE_ID

    from mprl.benchmarks.plain import PlainLearner

    env = gym.make(ENV)
    algo = _config(random_dataset, 2).build_algo()  # two updates: TD3+BC's critic step, then critic + actor + targets
    try:
        learner = algo.learner_group._learner  # local learner (num_learners 0): same process, same torch RNG
        rl_module = learner.module[DEFAULT_MODULE_ID]
        plain = PlainLearner(_config(random_dataset, 2), env.observation_space, env.action_space)
        plain.module.load_state_dict(rl_module.state_dict())  # same start (weights, targets, normaliser)
        start = {k: v.clone() for k, v in rl_module.state_dict().items()}
        # same minibatches: both samplers are seeded alike and have not sampled yet
        assert torch.equal(learner.updates.sampler.generator.get_state(), plain.sampler.generator.get_state())

        torch.manual_seed(123)  # same target-smoothing noise
        algo.train()
        torch.manual_seed(123)
        plain.update(2)

        after_rllib, after_plain = rl_module.state_dict(), plain.module.state_dict()
        assert after_rllib.keys() == after_plain.keys()
        for k in after_rllib:
            assert torch.equal(after_rllib[k], after_plain[k]), k
        assert any(not torch.equal(start[k], after_plain[k]) for k in start if k.startswith("critics.")), "the critic step did not run"
        assert any(not torch.equal(start[k], after_plain[k]) for k in start if k.startswith("actor.")), "the actor step did not run"
    finally:
        algo.stop()
        env.close()


def test_bench_learner_json(ray_local, capsys):
    from mprl.cli import main

    argv = ["bench", "learner", "--algo", "td3_bc", "--json", "--no-d3rlpy", "--updates", "20", "--repeats", "1", "--dataset-size", "600", "--batch-size", "32"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(out) == ["td3_bc"]
    off = out["td3_bc"]["offline"]
    assert {"updates_per_s_rllib", "updates_per_s_plain", "ratio", "target"} <= off.keys()
    assert off["updates_per_s_rllib"] > 0 and off["updates_per_s_plain"] > 0
    assert out["td3_bc"]["online"] == {"skipped": "no online paradigm"}


def test_plain_loop_and_rllib_learner_make_the_same_hybrid_updates(ray_local, random_dataset):
    """TD3+OPT fine-tuning on balanced replay (dataset ∪ online rows) with the κ the algorithm
    passes: the plain loop's `run_updates` and the RLlib learner's give bit-identical networks and
    priorities, from the same state, rows and minibatches."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    from algorithms.registry import discover
    from mprl.benchmarks.plain import PlainLearner

    info = discover()["opt"]
    make = lambda: (info.config_class()().environment(ENV)
                    .training(**info.config_class().settings.bench_settings, paradigm="hybrid", dataset=random_dataset, eval_episodes=0,
                              random_steps=0, learning_starts=0, train_batch_size_per_learner=32, hidden=[16, 16]))
    env = gym.make(ENV)
    algo = make().build_algo()
    try:
        learner = algo.learner_group._learner
        rl_module = learner.module[DEFAULT_MODULE_ID]
        plain = PlainLearner(make(), env.observation_space, env.action_space)
        assert plain.sampler.mode == learner.updates.sampler.mode == "balanced"
        plain.module.load_state_dict(rl_module.state_dict())
        start = {k: v.clone() for k, v in rl_module.state_dict().items()}
        assert torch.equal(learner.updates.sampler.generator.get_state(), plain.sampler.generator.get_state())
        rng = torch.Generator().manual_seed(0)
        obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
        rows = {"obs": torch.randn(40, obs_dim, generator=rng), "actions": torch.rand(40, act_dim, generator=rng) * 2 - 1,
                "rewards": torch.randn(40, generator=rng), "next_obs": torch.randn(40, obs_dim, generator=rng), "terminals": torch.zeros(40)}
        rows = {k: v.numpy() for k, v in rows.items()}
        learner.add_transitions(rows)
        plain.add(rows)
        # two updates: critics + density ratio, then those again + the actor on the κ-blend + targets
        torch.manual_seed(123)
        learner.run_updates(2, "update", env_steps=40, kappa=0.5)
        torch.manual_seed(123)
        plain.run_updates(2, "update", env_steps=40, kappa=0.5)
        after_rllib, after_plain = rl_module.state_dict(), plain.module.state_dict()
        for k in after_rllib:
            assert torch.equal(after_rllib[k], after_plain[k]), k
        for prefix in ("actor.", "critics_on.", "density_ratio."):
            assert any(not torch.equal(start[k], after_plain[k]) for k in start if k.startswith(prefix)), f"{prefix} did not train"
        a, b = learner.updates.sampler.get_state()["priorities"], plain.sampler.get_state()["priorities"]
        assert (a == b).all()
    finally:
        algo.stop()
        env.close()


def test_bench_learner_json_hybrid(ray_local, capsys):
    """Hybrid-only algorithms get a hybrid measurement (fine-tuning updates, the default hybrid
    replay) with a ratio; their stages before fine-tuning are skipped."""
    from mprl.cli import main

    argv = ["bench", "learner", "--algo", "rlpd", "opt_spot", "--json", "--no-d3rlpy", "--env-steps", "10", "--fragment", "5", "--utd", "1",
            "--repeats", "1", "--dataset-size", "600", "--batch-size", "32"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(out) == ["rlpd", "opt_spot"]
    for name, replay in (("rlpd", "mixed"), ("opt_spot", "balanced")):
        hyb = out[name]["hybrid"]
        assert {"env_steps_per_s_rllib", "env_steps_per_s_plain", "ratio", "target"} <= hyb.keys(), hyb
        assert hyb["env_steps_per_s_rllib"] > 0 and hyb["env_steps_per_s_plain"] > 0 and hyb["ratio"] > 0
        assert (hyb["utd"], hyb["fragment"], hyb["replay"]) == (1, 5, replay)
        assert out[name]["offline"] == {"skipped": "no offline paradigm"}


def test_bench_subroutine_pipeline_spends_the_same_online_budget_per_method(tmp_path):
    """Each seed's pipeline passes the spec's checks (dataset from the paused phase, best_of with
    and without validation) and gives every method the same online env steps."""
    from mprl.benchmarks import subroutine
    from mprl.spec import parse_pipeline

    parser = argparse.ArgumentParser()
    subroutine.add_parser(parser.add_subparsers())
    args = parser.parse_args(["subroutine", "--pause", "4000", "--after", "6000", "--seeds", "3"])
    spec = parse_pipeline(subroutine.pipeline(args, str(tmp_path), seed=3), source="bench subroutine")
    phases = {p.name: p for p in spec.phases}
    assert phases["online_only"].budget_value == phases["online"].budget_value + phases["sub_val"].budget_value == 10_000
    assert phases["sub_noval"].budget_value == 6_000 and phases["iql"].dataset.from_phases == ["online"]
    assert phases["sub_val"].init_from.keep == "online" and phases["sub_noval"].init_from.validation == "none"
    assert all(p.tune.seeds == [3] for p in spec.phases)


def test_bench_subroutine_cql_reaches_the_sac_fine_tuning_whole():
    """With the bench's CQL sizes every role of a CQL module maps onto SAC's (policy exact, nothing
    left at initialisation, CQL's temperature carried too); CQL's own 256×3 default would not."""
    from mprl.benchmarks.subroutine import SAC_SIZED_CQL
    from mprl.catalogue import get_algorithm
    from mprl.transfer import check, snapshot_from_module
    from mprl.transfer.snapshots import module_from_config

    env = "MountainCarContinuous-v0"
    snap = lambda name, **settings: snapshot_from_module(  # noqa: E731
        module_from_config(get_algorithm(name).new_config().training(**settings), env), algorithm=name, env=env)
    report = check(snap("cql", **SAC_SIZED_CQL), snap("sac"))
    assert report.policy == "exact" and report.to_dict()["left_initialised"] == [], report.notes
    default = check(snap("cql"), snap("sac"))
    assert default.policy != "exact" and default.to_dict()["left_initialised"]


def _o2o_args(*argv: str) -> argparse.Namespace:
    from mprl.benchmarks import o2o

    parser = argparse.ArgumentParser()
    o2o.add_parser(parser.add_subparsers())
    return parser.parse_args(["o2o", *argv])


@pytest.mark.parametrize("quality,kappa", [("random", (1.0, 1.0)), ("medium", (0.3, 0.9))])
def test_bench_o2o_pipeline_gives_every_method_the_same_online_budget(tmp_path, quality, kappa):
    """One offline checkpoint per backbone (one seed), every method fine-tuned for the same env
    steps over the same seeds, each from its own backbone (RLPD from none), OPT's κ as the paper
    sets it per dataset; the spec passes the scheduler's checks."""
    from mprl.benchmarks import o2o
    from mprl.spec import parse_pipeline

    args = _o2o_args("--env-steps", "1200", "--offline-updates", "2000", "--seeds", "0", "1", "2")
    spec = parse_pipeline(o2o.pipeline(args, quality, str(tmp_path)), source="bench o2o")
    phases = {p.name: p for p in spec.phases}
    offline = [p for p in spec.phases if p.name.startswith("offline_")]
    assert [p.algorithm for p in offline] == ["td3_bc", "iql", "cal_ql", "spot", "pars"]
    assert all(p.budget_value == 2000 and p.tune.seeds == [0] and p.select.rule == "last" for p in offline)
    assert offline[0].dataset.build.quality == quality and offline[0].dataset.id == f"mprl/hopper/{quality}-v0"
    tuned = [phases[m] for m in o2o.METHODS]
    assert all(p.budget_value == 1200 and p.budget_unit == "env_steps" and p.tune.seeds == [0, 1, 2] for p in tuned)
    assert {m: (phases[m].init_from.phase if phases[m].init_from else None) for m in o2o.METHODS} == {
        "td3": "offline_td3_bc", "td3_opt": "offline_td3_bc", "iql": "offline_iql", "cal_ql": "offline_cal_ql",
        "rlpd": None, "spot": "offline_spot", "pars": "offline_pars"}
    assert phases["rlpd"].dataset.id == f"mprl/hopper/{quality}-v0" and phases["td3"].paradigm == "online"
    opt = phases["td3_opt"].config
    assert (opt["kappa_start"], opt["kappa_end"], opt["n_tau"], opt["n_pretrain"]) == (*kappa, 100, 200)
    assert phases["spot"].config["vae_iterations"] == phases["offline_spot"].config["vae_iterations"] == 200


def test_bench_o2o_refuses_an_unknown_method(tmp_path):
    from mprl.benchmarks import o2o
    from mprl.errors import MprlError

    with pytest.raises(MprlError, match="unknown method.*sac.*choose from td3"):
        o2o.bench_o2o(_o2o_args("--methods", "td3", "sac", "--out", str(tmp_path)))
    assert not list(tmp_path.iterdir())  # nothing written


def test_bench_o2o_runs_and_reports_from_the_lineage(tmp_path, capsys):
    """A tiny real run (TD3+BC → TD3, one seed) through the phase scheduler: the report's scores
    and seconds are the lineage's, and the pipeline YAML is written for `mprl run`."""
    from mprl.benchmarks import o2o
    from mprl.lineage.store import LineageStore

    out = tmp_path / "out"
    args = _o2o_args("--qualities", "random", "--methods", "td3", "--offline-updates", "50", "--env-steps", "100",
                     "--seeds", "0", "--dataset-size", "1500", "--eval-episodes", "1", "--evaluations", "1",
                     "--minari-root", str(tmp_path / "minari"), "--out", str(out), "--json")
    assert o2o.bench_o2o(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    res = result["results"]["random"]
    with LineageStore(result["runs"]["random"], readonly=True) as store:
        last = store.metrics(node_id="td3")[-1]
        assert res["methods"]["td3"]["scores"] == [pytest.approx(last["normalized_score"])]
        assert res["methods"]["td3"]["seconds_per_seed"] == pytest.approx(last["time_total_s"])
        assert res["offline"]["td3_bc"]["score"] == pytest.approx(store.metrics(node_id="offline_td3_bc")[-1]["normalized_score"])
    assert {p.name for p in out.iterdir()} >= {"o2o.md", "o2o.json", "o2o.png", "o2o_random.yaml"}
    assert "| TD3 |" in (out / "o2o.md").read_text()


def _fidelity_args(*argv: str) -> argparse.Namespace:
    from mprl.benchmarks import fidelity

    parser = argparse.ArgumentParser()
    fidelity.add_parser(parser.add_subparsers())
    return parser.parse_args(["fidelity", *argv])


@pytest.mark.parametrize("name", ["opt-walker2d-random", "opt-hopper-random", "rlstudio-halfcheetah", "rlstudio-sim-to-real"])
def test_bench_fidelity_scales_every_budget_of_the_papers_file_together(tmp_path, monkeypatch, name):
    """Budgets and the settings counted in them (N_τ, N_pretrain, κ steps, a fresh phase's
    warm-up) scale by one factor; the compared phases run on --seeds, the upstream ones on the
    file's; the scaled spec passes the scheduler's checks, and --methods narrows it to a part."""
    import yaml

    from mprl.benchmarks import fidelity
    from mprl.spec import parse_pipeline

    comparison = fidelity.COMPARISONS[name]
    raw = yaml.safe_load((fidelity.CONFIGS / comparison.file).read_text())
    args = _fidelity_args(name, "--scale", "0.02", "--seeds", "3", "4", "--dataset-budget", "30000")
    args.methods = list(comparison.methods)
    spec = parse_pipeline(fidelity.scaled_pipeline(raw, comparison, args, str(tmp_path)), source="test")
    full = {p["name"]: p for p in raw["phases"]}
    assert [p.name for p in spec.phases] == list(full)
    for p in spec.phases:
        assert p.budget_value == round(next(iter(full[p.name]["budget"].values())) * 0.02)
        assert p.evaluation.interval == p.budget_value // 10
        assert p.tune.seeds == ([3, 4] if p.name in comparison.methods else full[p.name]["tune"]["seeds"])
        for key in ("n_tau", "n_pretrain", "kappa_steps"):
            if key in full[p.name].get("config", {}):
                assert p.config[key] == round(full[p.name]["config"][key] * 0.02)
        if p.algorithm in ("td3", "sac") and p.init_from is None:
            assert p.config["random_steps"] == p.config["learning_starts"] < p.budget_value
        if p.dataset is not None and p.dataset.build is not None and p.dataset.build.quality != "random":
            assert p.dataset.build.budget == 30000  # --dataset-budget: the agent a medium dataset comes from
    # `mprl validate` before the datasets exist: the first phase builds one, the later phases name it by id
    from mprl.pipeline.driver import validate_inputs

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "empty_minari"))
    said: list[str] = []
    validate_inputs(spec, said.append, build=False)
    assert all("the run builds it first" in line for line in said) and len(said) == int(any(p.dataset for p in spec.phases))
    args.methods = list(comparison.methods)[:1]
    part = parse_pipeline(fidelity.scaled_pipeline(raw, comparison, args, str(tmp_path)), source="test")
    assert [p.name for p in part.phases if p.name in comparison.methods] == args.methods


def test_bench_fidelity_refuses_what_it_cannot_run_before_anything_is_written(tmp_path):
    from mprl.benchmarks import fidelity
    from mprl.errors import MprlError

    out = str(tmp_path / "out")
    with pytest.raises(MprlError, match="unknown comparison 'opt-ant'; choose from opt-walker2d-random"):
        fidelity.bench_fidelity(_fidelity_args("opt-ant", "--out", out))
    with pytest.raises(MprlError, match="compares td3, td3_opt.*not sac"):
        fidelity.bench_fidelity(_fidelity_args("opt-hopper-random", "--methods", "td3", "sac", "--out", out))
    with pytest.raises(MprlError, match="--scale 2 must be in"):
        fidelity.bench_fidelity(_fidelity_args("opt-hopper-random", "--scale", "2", "--out", out))
    with pytest.raises(MprlError, match="holds no finished part.*run `mprl bench fidelity opt-hopper-random"):
        fidelity.bench_fidelity(_fidelity_args("opt-hopper-random", "--report", "--out", out))
    assert not list(tmp_path.iterdir())


def test_bench_fidelity_runs_a_part_and_reports_every_part(tmp_path, minari_root, capsys):
    """A tiny real part (TD3+BC → TD3 and TD3+OPT on hopper-random, one seed) through the phase
    scheduler: the report's final scores and seconds are the lineage's; a second part adds its
    seeds to the same table, a newer part's seed replaces an older one's, and a part at another
    scale is refused."""
    from mprl.benchmarks import fidelity
    from mprl.errors import MprlError
    from mprl.lineage.store import LineageStore

    out = tmp_path / "out"
    common = ["--scale", "0.0002", "--seeds", "0", "--evaluations", "1", "--eval-episodes", "1", "--dataset-size", "1500",
              "--storage-path", str(tmp_path / "runs"), "--out", str(out), "--json"]
    assert fidelity.bench_fidelity(_fidelity_args("opt-hopper-random", "--methods", "td3", "td3_opt", "--part", "a", *common)) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    part = json.loads((out / "parts" / "a.json").read_text())
    with LineageStore(part["run_dir"], readonly=True) as store:
        for method in ("td3", "td3_opt"):
            last = store.metrics(node_id=method)[-1]
            m = result["methods"][method]
            assert m["finals"] == [pytest.approx(last["normalized_score"])] and m["seeds"] == [0]
            assert m["seconds_per_trial"] == pytest.approx(last["time_total_s"])
            assert m["curve"][-1]["x"] == last["num_env_steps"] == 60  # 300k × 0.0002
        assert result["upstream"][0]["units"] == [store.metrics(node_id="offline")[-1]["num_updates"]] == [200]
    assert part["code"] != "unknown" and part["pipeline"]["phases"][2]["config"]["n_tau"] == 5  # 25k × 0.0002
    text = (out / "fidelity.md").read_text()
    assert "| TD3+OPT |" in text and "| 108.7 |" in text and {p.name for p in out.iterdir()} >= {"fidelity.json", "fidelity.png", "parts"}

    # a second part (here the first one's record with other seeds and scores): one table
    later = {**part, "part": "b", "finished": part["finished"] + 1}
    later["phases"] = json.loads(json.dumps(part["phases"]))
    for t in later["phases"]["td3"]["trials"]:
        t["final"] += 5.0  # seed 0 again: replaces part a's
    later["phases"]["td3"]["trials"].append({**later["phases"]["td3"]["trials"][0], "seed": 1, "final": -3.0})
    (out / "parts" / "b.json").write_text(json.dumps(later))
    assert fidelity.bench_fidelity(_fidelity_args("opt-hopper-random", "--report", "--out", str(out), "--json")) == 0
    merged = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert merged["methods"]["td3"]["seeds"] == [0, 1]
    assert merged["methods"]["td3"]["finals"] == [pytest.approx(result["methods"]["td3"]["finals"][0] + 5.0), -3.0]
    assert merged["methods"]["td3_opt"]["finals"] == result["methods"]["td3_opt"]["finals"] and list(merged["parts"]) == ["a", "b"]

    (out / "parts" / "c.json").write_text(json.dumps({**later, "part": "c", "scale": 0.5}))
    with pytest.raises(MprlError, match=r"mixes budget scales \[0.0002, 0.5\]"):
        fidelity.bench_fidelity(_fidelity_args("opt-hopper-random", "--report", "--out", str(out)))
    with pytest.raises(MprlError, match="holds parts at scale 0.5, not 0.0002: pass another --out"):
        fidelity.bench_fidelity(_fidelity_args("opt-hopper-random", *common))
