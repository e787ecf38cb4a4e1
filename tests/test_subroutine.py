"""Offline RL as a subroutine of online RL (Su, Luo, Zhang 2025): a phase's experience as a
dataset (`dataset: {from: PHASE}`), its selections, held-out episodes, fitted Q evaluation, and
the validated choice of the next phase's start (`init_from: {best_of: [...], keep: ...}`), on a
real local Ray with real Minari files.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mprl.datasets.from_phase import (
    held_out_split,
    select_episodes,
    split_episodes,
    take_label,
)
from mprl.errors import SpecError
from mprl.pipeline.choose import choose, fitted_q_evaluation

ENV = "InvertedPendulum-v5"


# ---------------------------------------------------------------- episodes from a replay


def _rows(chunks: list[tuple[list[float], bool]]) -> dict[str, np.ndarray]:
    """Replay rows from chunks of 1-d states [s0, s1, ..., s_k] (k transitions each) and whether
    the chunk's last transition terminated; rewards are the state."""
    obs, nxt, done = [], [], []
    for states, terminal in chunks:
        for i in range(len(states) - 1):
            obs.append([states[i]])
            nxt.append([states[i + 1]])
            done.append(terminal and i == len(states) - 2)
    n = len(obs)
    return {"obs": np.array(obs), "next_obs": np.array(nxt), "actions": np.zeros((n, 1)), "rewards": np.array(obs)[:, 0],
            "terminals": np.array(done, dtype=np.float32), "truncations": np.zeros(n, dtype=np.float32)}


def test_split_episodes_rejoins_interleaved_fragments():
    """Two env runners' fragments interleave: A(1,2,3) B(10,11) A(3,4 end) B(11,12,13 end) C(20,21)."""
    rows = _rows([([1, 2, 3], False), ([10, 11], False), ([3, 4], True), ([11, 12, 13], True), ([20, 21], False)])
    episodes = split_episodes(rows)
    states = [rows["obs"][e, 0].tolist() for e in episodes]
    assert states == [[1, 2, 3], [10, 11, 12], [20]]  # the last one was cut short by the pause


def test_selections_last_top_and_held_out():
    rows = _rows([([0, 1, 2, 3], True), ([5, 6, 7], True), ([9, 9.5, 9.7], True)])  # returns 3, 11, 18.5; ⌈0.3 · 3⌉ = 1 kept
    episodes = split_episodes(rows)
    top = select_episodes(episodes, rows["rewards"], SimpleNamespace(rule="top", fraction=0.3))
    assert [rows["obs"][e, 0].tolist() for e in top] == [[9, 9.5]]
    last = select_episodes(episodes, rows["rewards"], SimpleNamespace(rule="last", n=3))
    assert [rows["obs"][e, 0].tolist() for e in last] == [[6], [9, 9.5]]  # the window cuts the older episode
    assert take_label(SimpleNamespace(rule="top", fraction=0.25)) == "top25"
    mask = held_out_split(10, 0.2, seed=3)
    assert mask.sum() == 2 and np.array_equal(mask, held_out_split(10, 0.2, seed=3))
    assert held_out_split(1, 0.5, 0).sum() == 0  # one episode: nothing can be held out


# ---------------------------------------------------------------- fitted Q evaluation


def test_fitted_q_evaluation_ranks_policies_by_their_true_return():
    """Two-step episodes: s0 → s1 with reward 0, then reward −(a − 0.5)² and the end. J(π) =
    γ · −(π(s1) − 0.5)²: 0 for π ≡ 0.5, −0.99 for π ≡ −0.5. Actions in the data are uniform."""
    rng = np.random.default_rng(0)
    n = 2000
    a = rng.uniform(-1, 1, (n, 1))
    s0, s1 = np.zeros((n, 1)), np.ones((n, 1))
    obs = np.concatenate([s0, s1]).astype(np.float32)
    data = {
        "obs": obs, "actions": np.concatenate([a, a]).astype(np.float32),
        "rewards": np.concatenate([np.zeros(n), -((a[:, 0] - 0.5) ** 2)]).astype(np.float32),
        "next_obs": np.concatenate([s1, s1]).astype(np.float32),
        "terminals": np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32),
        "first": np.arange(n),
    }
    good = fitted_q_evaluation(lambda o: np.full((len(o), 1), 0.5), data, updates=1500, seed=0)
    bad = fitted_q_evaluation(lambda o: np.full((len(o), 1), -0.5), data, updates=1500, seed=0)
    assert good["score"] == pytest.approx(0.0, abs=0.1)
    assert bad["score"] == pytest.approx(-0.99, abs=0.15)


def test_choose_prefers_the_paused_policy_on_ties():
    cands = [{"checkpoint_id": "p", "score": 5.0}, {"checkpoint_id": "a", "score": 5.0}, {"checkpoint_id": "b", "score": 4.0}]
    assert choose(cands)["checkpoint_id"] == "p"
    cands[2]["score"] = 6.0
    assert choose(cands)["checkpoint_id"] == "b"


# ---------------------------------------------------------------- the YAML


def _spec(phases: list[dict], storage: str = "/tmp/unused") -> dict:
    return {"name": "sub", "storage_path": storage, "videos": {"selected": False}, "phases": phases}


ONLINE = {"name": "online", "algorithm": "sac", "env": ENV, "budget": {"env_steps": 10_000}}
OFFLINE = {"name": "offline", "algorithm": "iql", "env": ENV, "budget": {"updates": 100}, "dataset": {"from": "online"}}


@pytest.mark.parametrize("phases, expected", [
    ([OFFLINE], "unknown phase 'online'"),
    ([{**OFFLINE, "name": "first", "dataset": {"from": "first"}}], "cannot be the phase itself"),
    ([{**ONLINE, "name": "bc", "algorithm": "td3_bc", "paradigm": "offline", "dataset": "mprl/x/y-v0", "budget": {"updates": 10}},
      {**OFFLINE, "dataset": {"from": "bc"}}], "'bc' is an offline phase: it collects no experience"),
    ([ONLINE, {**OFFLINE, "dataset": {"from": "online", "id": "mprl/x/y-v0"}}], "not both"),
    ([ONLINE, {**OFFLINE, "dataset": {"id": "mprl/hopper/medium-v0", "take": {"last": 10}}}], "it needs `from: PHASE`"),
    ([ONLINE, OFFLINE, {**ONLINE, "name": "tune", "init_from": {"best_of": ["offline"], "keep": "offline"}}], "already in best_of"),
    ([ONLINE, OFFLINE, {**ONLINE, "name": "tune", "init_from": {"best_of": ["offline"], "keep": "online", "validation": "none"}}],
     "without validation nothing can prefer the paused policy"),
    ([ONLINE, OFFLINE, {**ONLINE, "name": "tune", "budget": {"updates": 100}, "init_from": {"best_of": ["offline"]}}],
     "write charge: false"),
])
def test_spec_refuses_what_cannot_run(phases, expected):
    from mprl.spec import parse_pipeline

    with pytest.raises(SpecError) as e:
        parse_pipeline(_spec(phases), source="sub")
    assert expected in str(e.value)


def test_spec_stores_the_source_phase_replay():
    from mprl.spec import parse_pipeline

    spec = parse_pipeline(_spec([ONLINE, OFFLINE]), source="sub")
    assert spec.phases[0].config["checkpoint_replay"] is True
    assert spec.phases[1].dataset_from == ["online"]


def test_the_shipped_pipeline_parses():
    from mprl.spec import load_pipeline

    spec = load_pipeline(Path(__file__).parents[1] / "tune_configs" / "offline_subroutine.yaml")
    names = [p.name for p in spec.phases]
    assert names == ["online1", "iql1", "cql1", "online2", "iql2", "cql2", "online3"]
    assert spec.phase("online2").chooses and spec.phase("online3").init_from.keep == "online2"
    assert spec.phase("online1").config["checkpoint_replay"] and spec.phase("online2").config["checkpoint_replay"]


# ---------------------------------------------------------------- the pipeline, on a real Ray


@pytest.fixture(scope="module")
def subroutine_run(ray_local, minari_root, tmp_path_factory):
    from mprl.runner import run_pipeline
    from mprl.spec import parse_pipeline

    small = {"hidden": [32, 32]}
    evaluation = {"episodes": 2, "seed": 7}
    phases = [
        {"name": "online", "algorithm": "sac", "env": ENV, "budget": {"env_steps": 1500}, "tune": {"seeds": [0]},
         "evaluation": {"interval": 1500, **evaluation}, "config": {**small, "random_steps": 500, "learning_starts": 500}},
        {"name": "offline", "algorithm": "iql", "env": ENV, "budget": {"updates": 200}, "tune": {"seeds": [0, 1]},
         "evaluation": {"interval": 200, **evaluation}, "config": small,
         "dataset": {"from": "online", "take": {"top": 0.5}, "held_out": 0.2}},
        {"name": "fine", "algorithm": "sac", "env": ENV, "budget": {"env_steps": 4000}, "tune": {"seeds": [0]},
         "evaluation": {"interval": 4000, **evaluation}, "config": small,
         "init_from": {"best_of": ["offline"], "keep": "online", "validation": "online", "episodes": 1}},
    ]
    lines: list[str] = []
    spec = parse_pipeline(_spec(phases, str(tmp_path_factory.mktemp("runs"))), source="subroutine")
    return run_pipeline(spec, write=lines.append), lines


def test_the_dataset_is_what_the_phase_collected(subroutine_run):
    """The top half of the online phase's episodes (minus the held-out fifth), as a Minari dataset
    on disk, listed with its source; the held-out episodes in a dataset of their own."""
    from mprl.datasets import load_transitions
    from mprl.datasets.store import episode_returns, list_datasets, mprl_metadata
    from mprl.lineage import LineageStore

    result, _ = subroutine_run
    with LineageStore(result.run_dir, readonly=True) as store:
        (record,) = store.datasets()
    dataset_id = record["dataset_id"]
    assert dataset_id == f"mprl-runs/{result.run_id}/online-top50-h20s0-v0" and record["node_id"] == "offline"
    meta = mprl_metadata(dataset_id)
    assert meta["quality"] == "from-phase" and meta["replay_transitions"] == 1500
    kept, held = episode_returns(dataset_id), episode_returns(meta["held_out_dataset"])
    n_train = meta["replay_episodes"] - len(held)
    assert len(kept) == -(-n_train // 2) and len(held) >= 1  # ⌈half⌉ of the episodes not held out
    assert len(load_transitions(dataset_id)["rewards"]) == meta["transitions"] < 1500
    listed = {r["id"]: r for r in list_datasets()}
    assert listed[dataset_id]["source"].startswith(result.run_id)


def test_the_choice_is_validated_recorded_and_charged(subroutine_run):
    """Three candidates (the paused SAC policy and two IQL seeds) each play one episode; the best
    starts the fine-tuning, whose env-step budget pays for the validation's steps."""
    from mprl.lineage import LineageStore
    from mprl.lineage.render import tree_text

    result, lines = subroutine_run
    with LineageStore(result.run_dir, readonly=True) as store:
        (sel,) = store.selections()
        scores = json.loads(sel["scores_json"])
        fine = next(n for n in store.nodes() if n["phase"] == "fine")
        tree = tree_text(store)
    assert [c["kind"] for c in scores] == ["paused", "candidate", "candidate"]
    best = max(scores, key=lambda c: c["score"])
    assert sel["chosen_checkpoint_id"] == best["checkpoint_id"] == fine["parent_checkpoint_id"]
    assert sel["env_steps"] == sum(c["env_steps"] for c in scores) > 0
    assert fine["budget_value"] == 4000 - sel["env_steps"] == result.phases[-1].env_steps
    assert f"start chosen by online validation, {sel['env_steps']:,} env steps: {best['checkpoint_id']}" in tree
    assert any("choosing the start among 3 checkpoint(s)" in line for line in lines)


def test_mprl_regime_compares_the_paused_policy_with_its_own_data(subroutine_run, capsys):
    """`mprl regime ck-… --dataset ID`: J(π_D) is the mean episode return of the dataset."""
    from mprl.cli import main
    from mprl.datasets.store import episode_returns
    from mprl.lineage import LineageStore

    result, _ = subroutine_run
    with LineageStore(result.run_dir, readonly=True) as store:
        online = next(n for n in store.nodes() if n["phase"] == "online")
        (ck,) = store.checkpoints(online["node_id"], selected_only=True)
        (record,) = store.datasets()
    args = ["regime", ck["checkpoint_id"], "--dataset", record["dataset_id"], "--episodes", "3", "--storage-path", str(Path(result.run_dir).parent)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "J(π0)  = " in text and any(f"regime : {r}" in text for r in ("Superior", "Comparable", "Inferior"))
    assert main([*args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["j_pi0"]["n"] == 3 and d["j_data"]["mean"] == pytest.approx(float(np.mean(episode_returns(record["dataset_id"]))))
    assert d["extra"]["env"] == ENV
