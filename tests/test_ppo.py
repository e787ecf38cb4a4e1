"""PPO as an mprl phase: RLlib's own PPO with exact env-step budgets, updates equal to its
optimiser's steps, counters through checkpoints, Serve and videos from its checkpoints, and
transfers PPO ↔ TD3/SAC through the checker (actor carried, V(s) never taken for a Q(s, a))."""

from __future__ import annotations

import numpy as np
import pytest
import torch

ENV = "InvertedPendulum-v5"
TINY = {"train_batch_size_per_learner": 128, "minibatch_size": 32, "num_epochs": 2, "eval_episodes": 2, "eval_seed": 7}


def test_ppo_budget_counts_checkpoint_serve_and_video(ray_local, tmp_path):
    from ray.rllib.core import DEFAULT_MODULE_ID

    from algorithms.ppo import PPOConfig
    from mprl.evaluation import deterministic_actions
    from mprl.serve.policy import load_policy
    from mprl.video import record_video

    cfg = PPOConfig().environment(ENV).training(budget_env_steps=300, env_steps_per_iteration=200, **TINY)
    algo = cfg.build_algo()
    try:
        rows = [algo.train(), algo.train()]
        assert [r["num_env_steps_lifetime"] for r in rows] == [200, 300] and rows[1]["budget_done"]  # 128 + 72, then 100
        steps = int(next(iter(algo.learner_group._learner.get_optimizer(DEFAULT_MODULE_ID).state.values()))["step"])
        assert rows[1]["num_updates_lifetime"] == steps > 0  # one update = one minibatch gradient step
        assert np.isfinite(rows[1]["evaluation_return"])
        path = algo.save(str(tmp_path / "ck")).checkpoint.path
        obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
        want = deterministic_actions(algo.env_runner.module, torch.as_tensor(obs), cfg.normalize_actions, cfg.clip_actions)
    finally:
        algo.stop()
    restored = PPOConfig().environment(ENV).training(budget_env_steps=300, env_steps_per_iteration=200, **TINY).build_algo()
    try:
        restored.restore_from_path(path)
        assert (restored.num_env_steps, restored.num_updates) == (300, steps)
    finally:
        restored.stop()
    policy = load_policy(path)
    np.testing.assert_allclose(policy.act(obs), want, rtol=1e-5, atol=1e-6)
    assert record_video(path, tmp_path / "ppo.mp4", steps=10)["steps"] == 10


def test_ppo_settings_are_typed_and_refused_when_not_ppos():
    from mprl.errors import SpecError
    from mprl.spec import parse_pipeline

    phase = {"name": "p", "algorithm": "ppo", "env": ENV, "budget": {"env_steps": 1000}}
    spec = parse_pipeline({"name": "ok", "phases": [{**phase, "config": {"lr": 1e-4, "lambda_": 0.9, "num_epochs": 3, "hidden": [32, 32]}}]})
    assert spec.phases[0].paradigm == "online"
    with pytest.raises(SpecError) as e:
        parse_pipeline({"name": "bad", "phases": [{**phase, "config": {"utd": 5, "clip_param": 0, "minibatch_size": 4096}}]})
    msg = str(e.value)
    assert "unknown setting 'utd' for ppo" in msg and "clip_param" in msg
    with pytest.raises(SpecError, match="ppo does not run offline phases"):
        parse_pipeline({"name": "bad", "phases": [{**phase, "paradigm": "offline", "budget": {"updates": 10}}]})


def test_ppo_checkpoint_warm_starts_sac_with_the_actor_and_not_the_value_function(ray_local, tmp_path):
    """PPO → SAC through the checker (the direction into PPO runs in tests/test_sim_to_real.py's pipeline)."""
    from algorithms.ppo import PPOConfig
    from algorithms.sac import SACConfig

    ppo = PPOConfig().environment(ENV).training(budget_env_steps=128, env_steps_per_iteration=128, hidden=[64, 64], activation="relu", **TINY).build_algo()
    try:
        ppo.train()
        path = ppo.save(str(tmp_path / "ppo")).checkpoint.path
    finally:
        ppo.stop()
    sac = SACConfig().environment("mprl/InvertedPendulum-real-v0").training(
        hidden=[64, 64], init_checkpoint=path, budget_env_steps=10, env_steps_per_iteration=10, eval_episodes=1).build_algo()
    try:
        report = sac.transfer_report
    finally:
        sac.stop()
    roles = {r["role"]: r for r in report["roles"]}
    assert report["possible"] and roles["actor"]["status"] in ("copied", "adapted") and report["policy"] == "approximate"
    assert roles["q[0]"]["status"] == "initialised" and "not a Q-function" in roles["q[0]"]["detail"]
    assert any("not a Q-function" in n for n in report["notes"])
    assert any("not a Q-function" in s["reason"] for s in report["skipped_detail"] if s["source"].startswith("vf."))
