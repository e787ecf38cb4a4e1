"""Local Minari datasets: build → load round trips on real Minari files in a tmp folder."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import minari
import numpy as np
import pytest
import torch

from mprl.datasets import (
    build_dataset,
    dataset_env_id,
    dataset_info,
    dataset_reference_scores,
    list_datasets,
    load_transitions,
    mprl_metadata,
)
from mprl.envs import REFERENCE_SCORES, env_family, make_env, normalized_score, reference_scores
from mprl.errors import DatasetNotFound, MprlError

HOPPER_ID = "mprl/hopper/random-v0"
SIZE = 3000


@pytest.fixture(scope="module")
def hopper_root(tmp_path_factory):
    """One random Hopper-v5 dataset shared by the read-only tests."""
    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        build_dataset("Hopper-v5", "random", size=SIZE, seed=3, progress=None)
        yield root


@pytest.fixture
def hopper(hopper_root, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(hopper_root))
    return HOPPER_ID


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.iterdir()] if root.exists() else []


# ------------------------------------------------------------------ envs


def test_env_helpers():
    assert env_family("Hopper-v5") == "hopper"
    assert env_family("InvertedPendulum-v5") == "invertedpendulum"
    assert env_family("ns/Walker2d-v4") == "walker2d"
    assert reference_scores("Hopper-v4") == REFERENCE_SCORES["hopper"] == (-20.272305, 3234.3)
    assert reference_scores("InvertedPendulum-v5") is None
    assert normalized_score(3234.3, "Hopper-v5") == pytest.approx(100.0)
    assert normalized_score(-280.178953, "HalfCheetah-v5") == pytest.approx(0.0)
    assert normalized_score(5.0, refs=(0.0, 10.0)) == pytest.approx(50.0)
    assert normalized_score(5.0, "InvertedPendulum-v5") is None
    with pytest.raises(MprlError, match="Did you mean 'Hopper-v5'"):
        make_env("Hoper-v5")


# ------------------------------------------------------------------ random round trip


def test_random_round_trip_arrays(hopper):
    data = load_transitions(hopper)
    assert set(data) == {"obs", "actions", "rewards", "next_obs", "terminals", "timeouts"}
    assert data["obs"].shape == data["next_obs"].shape == (SIZE, 11)
    assert data["actions"].shape == (SIZE, 3)
    for k in ("rewards", "terminals", "timeouts"):
        assert data[k].shape == (SIZE,)
    assert all(v.dtype == np.float32 for v in data.values())
    assert set(np.unique(data["terminals"])) <= {0.0, 1.0}
    assert set(np.unique(data["timeouts"])) <= {0.0, 1.0}
    assert np.all(np.abs(data["actions"]) <= 1.0)

    # against minari's own episodes: terminals = terminations, timeouts = truncations, kept apart
    episodes = list(minari.load_dataset(hopper).iterate_episodes())
    assert sum(len(e) for e in episodes) == SIZE
    cat = lambda f: np.concatenate([f(e) for e in episodes])  # noqa: E731
    np.testing.assert_array_equal(data["obs"], cat(lambda e: e.observations[:-1]).astype(np.float32))
    np.testing.assert_array_equal(data["next_obs"], cat(lambda e: e.observations[1:]).astype(np.float32))
    np.testing.assert_array_equal(data["actions"], cat(lambda e: e.actions).astype(np.float32))
    np.testing.assert_array_equal(data["rewards"], cat(lambda e: e.rewards).astype(np.float32))
    np.testing.assert_array_equal(data["terminals"], cat(lambda e: e.terminations).astype(np.float32))
    np.testing.assert_array_equal(data["timeouts"], cat(lambda e: e.truncations).astype(np.float32))

    # every episode ends with exactly one of terminated / truncated; random Hopper falls, and the
    # episode cut by the size limit is marked truncated
    for e in episodes:
        assert not (e.terminations[:-1].any() or e.truncations[:-1].any())
        assert e.terminations[-1] != e.truncations[-1]
    assert data["terminals"].sum() > 10
    assert episodes[-1].truncations[-1] and not episodes[-1].terminations[-1]
    assert data["timeouts"][-1] == 1.0

    # next_obs equals the following obs within an episode
    done = (data["terminals"] + data["timeouts"]) > 0
    np.testing.assert_array_equal(data["next_obs"][:-1][~done[:-1]], data["obs"][1:][~done[:-1]])

    # the transitions cache gives the same arrays as reading the HDF5 episodes
    fresh = load_transitions(hopper, cache=False)
    for k in data:
        np.testing.assert_array_equal(fresh[k], data[k])


def test_random_round_trip_metadata(hopper, hopper_root, capsys):
    meta = mprl_metadata(hopper)
    assert meta["quality"] == "random"
    assert meta["env_id"] == "Hopper-v5"
    assert meta["seed"] == 3 and meta["size"] == SIZE and meta["transitions"] == SIZE
    assert meta["budget"] is None and meta["policy_checkpoint"] is None
    assert meta["ref_source"] == "d4rl" and np.isfinite(meta["random_return"])
    assert meta["mprl_version"] and meta["built_at"] and meta["build_time_s"] > 0
    assert dataset_env_id(hopper) == "Hopper-v5"
    assert dataset_reference_scores(hopper) == REFERENCE_SCORES["hopper"]

    info = dataset_info(hopper)
    assert info["steps"] == SIZE and info["episodes"] == meta["episodes"]
    ds = minari.load_dataset(hopper)
    returns = np.array([e.rewards.sum() for e in ds.iterate_episodes()])
    assert info["mean_return"] == pytest.approx(returns.mean(), rel=1e-5)
    lo, hi = REFERENCE_SCORES["hopper"]
    assert info["normalized_score"] == pytest.approx(100 * (returns.mean() - lo) / (hi - lo), rel=1e-5)
    # minari reads the same refs
    assert minari.get_normalized_score(ds, np.array([hi]))[0] == pytest.approx(1.0)

    rows = {r["id"]: r for r in list_datasets()}
    assert rows[hopper]["quality"] == "random" and rows[hopper]["steps"] == SIZE
    assert not [n for n in _leftovers(hopper_root) if n.startswith(".")]

    from mprl.datasets.cli import add_subparser

    parser = argparse.ArgumentParser(prog="mprl")
    add_subparser(parser.add_subparsers())
    for argv in (["datasets", "list"], ["datasets", "info", hopper]):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    out = capsys.readouterr().out
    assert hopper in out and "Hopper-v5" in out and "normalised score" in out


def test_missing_dataset_names_the_build_command(hopper):
    with pytest.raises(DatasetNotFound) as e:
        load_transitions("mprl/hopper/medium-v0")
    assert "mprl datasets build Hopper-v5 --quality medium --size 100000" in str(e.value)
    with pytest.raises(DatasetNotFound) as e:
        load_transitions("mprl/walker2d/medium-replay-v0")
    assert "mprl datasets build Walker2d-v5 --quality medium-replay" in str(e.value)
    with pytest.raises(DatasetNotFound) as e:
        load_transitions("mujoco/hopper/expert-v0")
    assert "MINARI_DATASETS_PATH" in str(e.value) and "minari download mujoco/hopper/expert-v0" in str(e.value)
    with pytest.raises(MprlError, match="Malformed"):
        load_transitions("not an id")


# ------------------------------------------------------------------ overwrite / atomicity


def test_overwrite_refused_then_allowed(empty_root):
    did = build_dataset("Hopper-v5", "random", size=200, seed=0, progress=None)
    first = load_transitions(did)["obs"]
    with pytest.raises(MprlError, match="--overwrite"):
        build_dataset("Hopper-v5", "random", size=200, seed=1, progress=None)
    np.testing.assert_array_equal(load_transitions(did)["obs"], first)  # untouched
    build_dataset("Hopper-v5", "random", size=300, seed=1, overwrite=True, progress=None)
    assert load_transitions(did)["obs"].shape == (300, 11)
    assert mprl_metadata(did)["seed"] == 1
    assert not [n for n in _leftovers(empty_root) if n.startswith(".")]


@pytest.mark.parametrize("where", ["collect", "write"])
def test_failed_build_leaves_nothing(empty_root, monkeypatch, where):
    import mprl.datasets.build as b

    if where == "collect":  # Ctrl-C while recording
        def boom(*a, **k):
            raise KeyboardInterrupt

        monkeypatch.setattr(b, "_rollout", boom)
        exc = KeyboardInterrupt
    else:  # crash after minari wrote everything, before the dataset is moved into place
        orig = b.write_minari

        def boom(*a, **k):
            orig(*a, **k)
            raise RuntimeError("disk full")

        monkeypatch.setattr(b, "write_minari", boom)
        exc = RuntimeError
    with pytest.raises(exc):
        build_dataset("Hopper-v5", "random", size=300, progress=None)
    assert _leftovers(empty_root) == []  # no dataset, no namespace, no staging folder
    with pytest.raises(DatasetNotFound):
        load_transitions("mprl/hopper/random-v0")
    assert list_datasets() == []


def test_stale_staging_of_dead_process_is_removed(empty_root):
    empty_root.mkdir(parents=True)
    stale = empty_root / ".mprl-build-999999999-deadbeef"
    (stale / "mprl").mkdir(parents=True)
    build_dataset("InvertedPendulum-v5", "random", size=100, progress=None)
    assert not stale.exists()


# ------------------------------------------------------------------ envs without D4RL refs


def test_random_without_d4rl_refs_stores_measured_ref_min(empty_root):
    did = build_dataset("InvertedPendulum-v5", "random", size=500, progress=None)
    assert did == "mprl/invertedpendulum/random-v0"
    meta = minari.load_dataset(did).storage.metadata
    assert meta["ref_min_score"] == pytest.approx(mprl_metadata(did)["random_return"])
    assert "ref_max_score" not in meta  # nothing trained: no expert return to store
    assert dataset_reference_scores(did) is None
    assert dataset_info(did)["normalized_score"] is None
    with pytest.raises(ValueError):
        minari.get_normalized_score(minari.load_dataset(did), np.array([1.0]))


# ------------------------------------------------------------------ medium / medium-replay / expert


class ScriptedAgent:
    """Stands in for mprl.benchmarks.plain.PlainTD3 (same interface) with scripted evaluation returns,
    so the snapshot logic is tested without training: the policy is a constant action."""

    script = [5.0, 20.0, 40.0, 90.0]  # evaluations at 1000, 2000, 3000, 4000 steps
    final = 100.0

    def __init__(self, observation_space, action_space, seed=0):
        self.space = action_space
        self.level = torch.zeros(1)

    def act(self, obs, noise=0.0):
        a = np.full(self.space.shape, float(self.level), np.float32)
        return np.clip(a + noise * np.random.default_rng(0).normal(size=a.shape), -3, 3)

    def train_online(self, env_id, env_steps, *, seed=0, eval_every=5000, on_transition=None, on_eval=None, **_):
        env = make_env(env_id)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        for step in range(1, env_steps + 1):
            action = env.action_space.sample()
            nxt, r, term, trunc, _ = env.step(action)
            on_transition({"obs": obs, "action": action, "reward": r, "next_obs": nxt,
                           "terminated": term, "truncated": trunc})
            obs = env.reset()[0] if term or trunc else nxt
            if step % eval_every == 0:
                self.level += 0.1
                on_eval(step, self.script[step // eval_every - 1])

    def evaluate(self, env_id, episodes=10, seed=0):
        return self.final

    def state_dict(self):
        return {"level": self.level}

    def load_state_dict(self, d):
        self.level = d["level"].clone()


def test_snapshot_selection_with_scripted_agent(empty_root, monkeypatch):
    import mprl.datasets.build as b
    import mprl.benchmarks.plain

    monkeypatch.setattr(mprl.benchmarks.plain, "PlainTD3", ScriptedAgent)
    monkeypatch.setattr(b, "random_return", lambda *a, **k: 0.0)
    # no D4RL refs: normalised with (random 0, final 100) → threshold 33.3 → snapshot at 3000 (40.0)
    did = build_dataset("InvertedPendulum-v5", "medium-replay", size=None, budget=4000, progress=None)
    meta = mprl_metadata(did)
    assert meta["snapshot"]["env_step"] == 3000 and meta["snapshot"]["return"] == 40.0
    assert meta["evaluations"] == [[1000, 5.0], [2000, 20.0], [3000, 40.0], [4000, 90.0]]
    assert meta["transitions"] == 3000 and meta["size"] is None and meta["episode_discontinuities"] == 0
    data = load_transitions(did)
    assert data["obs"].shape == (3000, 4)
    done = (data["terminals"] + data["timeouts"]) > 0
    np.testing.assert_array_equal(data["next_obs"][:-1][~done[:-1]], data["obs"][1:][~done[:-1]])
    assert data["timeouts"][-1] == 1.0  # the episode cut by the snapshot
    ds = minari.load_dataset(did)
    assert ds.storage.metadata["ref_min_score"] == 0.0 and ds.storage.metadata["ref_max_score"] == 100.0
    policy = torch.load(Path(dataset_info(did)["policy_checkpoint"]))
    assert float(policy["level"]) == pytest.approx(0.3)

    did = build_dataset("InvertedPendulum-v5", "medium", size=500, budget=4000, progress=None)
    meta = mprl_metadata(did)
    assert meta["snapshot"]["env_step"] == 3000 and "sigma = 0.1" in meta["exploration"]
    assert load_transitions(did)["obs"].shape == (500, 4)
    did = build_dataset("InvertedPendulum-v5", "expert", size=400, budget=4000, progress=None)
    meta = mprl_metadata(did)
    assert meta["snapshot"]["env_step"] == 4000 and meta["expert_return"] == 100.0
    assert float(torch.load(Path(dataset_info(did)["policy_checkpoint"]))["level"]) == pytest.approx(0.4)


@pytest.mark.slow
def test_medium_replay_with_real_td3(empty_root):
    """The real PlainTD3 through the whole path (a tiny budget: plumbing, not learning)."""
    t0 = time.perf_counter()
    did = build_dataset("InvertedPendulum-v5", "medium-replay", size=None, budget=1500, progress=None)
    meta = mprl_metadata(did)
    assert [s for s, _ in meta["evaluations"]] == [1000, 1500]
    assert meta["snapshot"]["env_step"] in (1000, 1500)
    assert meta["transitions"] == meta["snapshot"]["transitions_seen"] == meta["snapshot"]["env_step"]
    assert meta["episode_discontinuities"] == 0
    data = load_transitions(did)
    assert data["obs"].shape == (meta["transitions"], 4)
    state = torch.load(Path(dataset_info(did)["policy_checkpoint"]))
    assert isinstance(state, dict) and state
    assert os.path.isfile(Path(empty_root, did, "policy.pt"))
    print(f"medium-replay build with real TD3: {time.perf_counter() - t0:.1f}s")


@pytest.mark.slow
def test_expert_with_real_td3_learns(empty_root):
    """A short real training run: the recorded expert policy beats the random policy clearly."""
    did = build_dataset("InvertedPendulum-v5", "expert", size=1000, budget=3000, progress=None)
    meta = mprl_metadata(did)
    # expert = the best evaluated snapshot (issue 18), not necessarily the last
    assert meta["snapshot"]["env_step"] == meta["best"]["env_step"] and meta["size"] == 1000
    assert meta["expert_return"] == meta["best"]["achieved_return"] > 3 * meta["random_return"]
    info = dataset_info(did)
    assert info["steps"] == 1000
    assert info["reference_scores"] == [meta["random_return"], meta["expert_return"]]
    assert info["mean_return"] > 2 * meta["random_return"]


def test_transition_log_rebuilds_episodes():
    """medium-replay's episodes from on_transition: exact obs/next_obs, a discontinuity is
    detected and closes the episode, and the episode cut at n is marked truncated."""
    from mprl.datasets.build import _TransitionLog

    env = make_env("Hopper-v5")
    env.action_space.seed(0)
    log, trans = _TransitionLog((11,), (3,), 8), []
    obs, _ = env.reset(seed=0)
    for k in range(400):
        a = env.action_space.sample()
        nxt, r, te, tr, _ = env.step(a)
        trans.append(dict(obs=obs, action=a, reward=r, next_obs=nxt, terminated=te, truncated=tr))
        log(trans[-1])
        obs = env.reset()[0] if te or tr or k == 150 else nxt  # k == 150: a jump
    for n in (400, 333):
        bufs, broken = log.episodes(n)
        assert broken == (0 if (trans[150]["terminated"] or trans[150]["truncated"]) else 1)
        assert sum(len(b.rewards) for b in bufs) == n
        np.testing.assert_array_equal(np.concatenate([b.observations[:-1] for b in bufs]),
                                      np.array([t["obs"] for t in trans[:n]]))
        np.testing.assert_array_equal(np.concatenate([b.observations[1:] for b in bufs]),
                                      np.array([t["next_obs"] for t in trans[:n]]))
        for b in bufs:
            assert b.terminations[-1] != b.truncations[-1]
            assert not (b.terminations[:-1].any() or b.truncations[:-1].any())
