"""The one episode loop (mprl/episodes.py) that evaluation, videos, rollouts and dataset recording share."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from mprl.episodes import run_episodes


def test_episodes_seeds_and_ends_like_a_hand_written_loop():
    env = gym.make("InvertedPendulum-v5")
    act = lambda obs: np.clip(-obs[1:2] * 3.0, -3, 3).astype(np.float32)  # noqa: E731
    done = run_episodes(env, act, seeds=lambda i: 100 + i, episodes=3)
    expected = []
    for i in range(3):  # the loop every caller had before
        obs, _ = env.reset(seed=100 + i)
        ret, n, end = 0.0, 0, False
        while not end:
            obs, r, term, trunc, _ = env.step(act(obs))
            ret, n, end = ret + float(r), n + 1, term or trunc
        expected.append((ret, n))
    assert list(zip(done.returns, done.lengths)) == expected and done.partial_length == 0


def test_a_step_budget_cuts_the_last_episode_and_max_steps_truncates():
    env = gym.make("InvertedPendulum-v5")
    seen = []
    done = run_episodes(env, lambda o: np.zeros(1, np.float32), seeds=[0] + [None] * 99, steps=25,
                        max_episode_steps=10, on_step=seen.append)
    assert done.lengths == [10, 10] and done.partial_length == 5 and len(seen) == 25
    assert [t.truncated for t in seen].count(True) == 2 and seen[-1].last and not any(t.last for t in seen[:-1])
    assert [t.episode for t in seen] == [0] * 10 + [1] * 10 + [2] * 5
    with pytest.raises(ValueError, match="exactly one of episodes or steps"):
        run_episodes(env, lambda o: o, seeds=[0], episodes=1, steps=1)
