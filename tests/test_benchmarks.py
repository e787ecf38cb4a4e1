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
