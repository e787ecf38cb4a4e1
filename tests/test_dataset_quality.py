"""Dataset qualities mean what D4RL's names mean: `expert` is the best evaluated snapshot and
`medium` the snapshot closest to a stated target (default 1/3 of the best's normalised score),
even when the agent peaks and falls; the achieved score and the target are stored and shown,
and `strict` refuses a dataset whose target was not reached."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from mprl.datasets import build_dataset, dataset_info, mprl_metadata
from mprl.datasets.cli import add_subparser
from mprl.envs import make_env
from mprl.errors import MprlError

ENV = "InvertedPendulum-v5"  # no D4RL scores: normalised 0 = random policy, 100 = the best snapshot


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


class PeakAndFall:
    """Stands in for PlainTD3 (its interface): an agent whose evaluated return rises to 300 at
    4,000 steps and falls to 60 by the end, the Hopper case of issue 18. Its return is a
    function of its weights (`level`), so re-evaluating a loaded snapshot gives its score."""

    curve: ClassVar[dict[int, float]] = {1: 5.0, 2: 40.0, 3: 100.0, 4: 300.0, 5: 60.0}  # level (×0.1) → return

    def __init__(self, observation_space, action_space, seed=0, **_):
        self.space, self.level = action_space, torch.zeros(())

    def act(self, obs, noise=0.0):
        return np.full(self.space.shape, float(self.level), np.float32)

    def train_online(self, env_id, env_steps, *, seed=0, eval_every=5000, on_transition=None, on_eval=None, **_):
        env = make_env(env_id)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        for step in range(1, env_steps + 1):
            action = env.action_space.sample()
            nxt, r, term, trunc, _ = env.step(action)
            on_transition({"obs": obs, "action": action, "reward": r, "next_obs": nxt, "terminated": term, "truncated": trunc})
            obs = env.reset()[0] if term or trunc else nxt
            if step % eval_every == 0:
                self.level = self.level + 0.1
                on_eval(step, self.evaluate(env_id))
        env.close()

    def evaluate(self, env_id, episodes=10, seed=0):
        return self.curve[round(float(self.level) * 10)]

    def state_dict(self):
        return {"level": self.level.clone()}

    def load_state_dict(self, d):
        self.level = d["level"].clone()


@pytest.fixture
def peak_and_fall(empty_root, monkeypatch):
    import mprl.benchmarks.plain
    import mprl.datasets.build as b

    monkeypatch.setattr(mprl.benchmarks.plain, "PlainTD3", PeakAndFall)
    monkeypatch.setattr(b, "random_return", lambda *a, **k: 0.0)
    return empty_root


def test_snapshots_are_chosen_against_the_best_not_the_last(peak_and_fall, capsys):
    # best = 300 at 4,000 steps; medium target = 100 / 3 normalised = return 100 → the 3,000-step
    # snapshot. The old rule (a third of the final 60 → the earliest ≥ 20) took 2,000 (40), and
    # expert took the final agent (60).
    did = build_dataset(ENV, "medium", size=300, budget=5000, progress=print)
    meta = mprl_metadata(did)
    assert meta["best"]["env_step"] == 4000 and meta["best"]["achieved_return"] == 300.0
    assert meta["snapshot"]["env_step"] == 3000 and meta["snapshot"]["achieved_return"] == 100.0
    assert meta["target"]["normalized_score"] == pytest.approx(100 / 3) and meta["target"]["return"] == pytest.approx(100.0)
    assert meta["target"]["reached"] is True
    assert meta["final"]["return"] == 60.0 and meta["expert_return"] == 300.0
    assert float(torch.load(Path(dataset_info(did)["policy_checkpoint"]))["level"]) == pytest.approx(0.3)
    out = capsys.readouterr().out
    assert "chosen snapshot: env step 3,000" in out and "reached" in out

    did = build_dataset(ENV, "expert", size=300, budget=5000, progress=None)
    meta = mprl_metadata(did)
    assert meta["snapshot"]["env_step"] == 4000 and meta["snapshot"]["achieved_return"] == 300.0
    assert meta["target"]["normalized_score"] is None  # no D4RL scores: the best is the expert by definition
    assert dataset_info(did)["reference_scores"] == [0.0, 300.0]

    # an explicit target: normalised 10 = return 30 → the 2,000-step snapshot (40), 3.3 points off
    did = build_dataset(ENV, "medium-replay", size=None, budget=5000, target_score=10, progress=None, dataset_id="mprl/invertedpendulum/t10-v0")
    meta = mprl_metadata(did)
    assert meta["snapshot"]["env_step"] == 2000 and meta["transitions"] == 2000
    assert meta["target"]["source"] == "--target-score 10" and meta["target"]["reached"] is True

    parser = argparse.ArgumentParser(prog="mprl")
    add_subparser(parser.add_subparsers())
    for argv in (["datasets", "list"], ["datasets", "info", "mprl/invertedpendulum/medium-v0"]):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "33.3 / 33.3 ok" in out  # list: achieved / target
    assert re.search(r"achieved score +return 100\.0 over 10 episodes, normalised 33\.3\n", out)
    assert re.search(r"target +normalised 33\.3 ± 8\.3 \(return 100\.0; 1/3 of the best snapshot's normalised score\): reached\n", out)


def test_a_missed_target_warns_or_with_strict_refuses(peak_and_fall):
    # return 1,000 is above anything the agent reached within the budget
    with pytest.warns(UserWarning, match="target not reached: the best snapshot scored 100.0"):
        did = build_dataset(ENV, "expert", size=200, budget=5000, target_return=1000, progress=None)
    meta = mprl_metadata(did)
    assert meta["target"]["reached"] is False and meta["snapshot"]["achieved_return"] == 300.0

    with pytest.raises(MprlError, match=r"target not reached.*Raise --budget.*Nothing was written"):
        build_dataset(ENV, "medium", size=200, budget=5000, target_return=1000, strict=True, progress=None)
    assert not (peak_and_fall / "mprl" / "invertedpendulum" / "medium-v0").exists()
    assert not [p for p in peak_and_fall.iterdir() if p.name.startswith(".")]  # no staging left

    # bad targets fail before any training
    with pytest.raises(MprlError, match="not both"):
        build_dataset(ENV, "medium", size=200, budget=5000, target_return=1, target_score=1, progress=None)
    with pytest.raises(MprlError, match="do not apply to random"):
        build_dataset(ENV, "random", size=200, target_score=30, progress=None)
    with pytest.raises(MprlError, match="Give --target-return"):
        build_dataset(ENV, "expert", size=200, budget=5000, target_score=90, progress=None)


def test_real_td3_build_follows_the_rule(empty_root):
    """A small real build (real PlainTD3 on MuJoCo, real Minari files): the stored choice is the
    rule applied to the stored evaluations, and the achieved scores are re-measured ones."""
    t0 = time.perf_counter()
    did = build_dataset(ENV, "medium", size=500, budget=3000, seed=0, agent={"hidden": [32, 32], "lr": 1e-3}, progress=None)
    meta = mprl_metadata(did)
    evals = dict(map(tuple, meta["evaluations"]))
    assert sorted(evals) == [1000, 2000, 3000]
    candidates = {**{s: r for s, r in evals.items() if s != 3000}, 3000: meta["final"]["return"]}
    best_step = max(candidates, key=lambda s: (candidates[s], -s))
    assert meta["best"]["env_step"] == best_step
    rand, best = meta["random_return"], meta["best"]["achieved_return"]
    assert best > 2 * rand, "the agent did not learn at all"
    norm = lambda r: 100 * (r - rand) / (best - rand)
    target = meta["target"]["normalized_score"]
    assert target == pytest.approx(norm(best) / 3)
    closest = min((s for s in candidates if s <= best_step), key=lambda s: (abs(norm(candidates[s]) - target), s))
    assert meta["snapshot"]["env_step"] == closest
    achieved = meta["snapshot"]["achieved_normalized_score"]
    assert achieved == pytest.approx(norm(meta["snapshot"]["achieved_return"]))
    assert meta["target"]["reached"] == (abs(achieved - target) <= max(5.0, 0.25 * target))
    info = dataset_info(did)
    assert info["steps"] == 500 and info["reference_scores"] == [rand, best]
    print(f"real medium build: {time.perf_counter() - t0:.1f}s, evaluations {meta['evaluations']}, "
          f"best {best:.1f}, snapshot {meta['snapshot']}, target {target:.1f}")


def test_a_pipeline_dataset_build_takes_the_target(peak_and_fall, tmp_path):
    from mprl.pipeline.driver import ensure_dataset
    from mprl.spec import parse_pipeline

    def spec(build: dict):
        phase = {"name": "off", "algorithm": "td3_bc", "env": ENV, "budget": {"updates": 100},
                 "dataset": {"id": "mprl/invertedpendulum/medium-v0", "build": build}}
        return parse_pipeline({"name": "q", "storage_path": str(tmp_path), "phases": [phase]})

    with pytest.raises(MprlError, match="give target_score or target_return, not both"):
        spec({"quality": "medium", "target_score": 30, "target_return": 100})
    phase = spec({"quality": "medium", "size": 200, "budget": 5000, "target_return": 1000, "strict": True}).phases[0]
    with pytest.raises(MprlError, match="target not reached"):
        ensure_dataset(phase, lambda _line: None)
    assert not (peak_and_fall / "mprl" / "invertedpendulum" / "medium-v0").exists()
    phase = spec({"quality": "medium", "size": 200, "budget": 5000, "target_return": 40}).phases[0]
    ensure_dataset(phase, lambda _line: None)
    meta = mprl_metadata("mprl/invertedpendulum/medium-v0")
    assert meta["snapshot"]["env_step"] == 2000 and meta["target"]["source"] == "--target-return 40"
