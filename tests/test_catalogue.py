"""Every registered algorithm, in each paradigm it supports, on the one base: a tiny training
iteration on a real local Ray, exact update and env-step counts, a checkpoint that Serve loads
and acts with (the same actions as the trained module), and a behaviour video.

Adding an algorithm to `algorithms/` adds its rows here without editing this file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mprl.catalogue import CATALOGUE
from mprl.evaluation import deterministic_actions

ENV_ID = "InvertedPendulum-v5"
CASES = [(name, p) for name, e in CATALOGUE.items() for p in e.paradigms]


@pytest.fixture(scope="module")
def tiny_dataset(minari_root):
    from mprl.datasets import build_dataset

    return build_dataset(ENV_ID, "random", size=2000, seed=0, progress=None, overwrite=True)


def tiny_config(name: str, paradigm: str, dataset: str, root: str):
    entry = CATALOGUE[name]
    cfg = entry.new_config().environment(ENV_ID)
    fields = entry.settings.model_fields
    settings = {"hidden": [32, 32], "train_batch_size_per_learner": 32, "paradigm": paradigm, "eval_episodes": 1}
    if paradigm == "offline":
        settings.update(updates_per_iteration=20, budget_updates=20)
    else:
        settings.update(env_steps_per_iteration=100, budget_env_steps=100, random_steps=20, learning_starts=20, utd=1)
    if paradigm != "online":
        settings.update(dataset=dataset, dataset_root=root)
    for key, value in {"n_tau": 40, "n_pretrain": 10, "pretrain_updates_per_iteration": 10, "vae_iterations": 10, "minibatch_size": 16}.items():  # OPT's and SPOT's stages; PPO's minibatch
        if key in fields:
            settings[key] = value
    from algorithms.common.phase_algorithm import PHASE_SETTINGS

    # settings an algorithm does not have (an on-policy PPO has no utd, warm-up or replay) are left out
    return cfg.training(**{k: v for k, v in settings.items() if k in fields or k in PHASE_SETTINGS or k == "paradigm"})


@pytest.mark.parametrize(("name", "paradigm"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_every_algorithm_trains_checkpoints_serves_and_films(ray_local, minari_root, tiny_dataset, tmp_path, name, paradigm):
    from mprl.serve.policy import load_policy
    from mprl.video import record_video

    algo = tiny_config(name, paradigm, tiny_dataset, str(minari_root)).build_algo()
    try:
        result = algo.train()
        while not result["budget_done"]:
            result = algo.train()
        if paradigm == "offline":
            assert (result["num_updates_lifetime"], result["num_env_steps_lifetime"]) == (20, 0)
        else:
            assert result["num_env_steps_lifetime"] == 100 and result["num_updates_lifetime"] > 0
            if getattr(algo, "keeps_replay", False):
                assert result["replay_size"] >= 60  # the online rows (OPT's collect stage included)
        assert np.isfinite(result["evaluation_return"])
        path = algo.save(str(tmp_path / "ck")).checkpoint.path
        module = algo.env_runner.module
        obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
        want = deterministic_actions(module, torch.as_tensor(obs), algo.config.normalize_actions, algo.config.clip_actions)  # module.act, or RLlib's modules' mode
    finally:
        algo.stop()
    policy = load_policy(path)
    np.testing.assert_allclose(policy.act(obs), want, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(policy.act(obs * 100)) <= 3.0)  # inside InvertedPendulum's action bounds
    assert record_video(path, tmp_path / f"{name}.mp4", steps=10)["steps"] == 10
