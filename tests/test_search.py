"""Tune searches (mprl.search): distributions validated and expanded, a missing searcher's
message, the shipped search files, and one real search on a local Ray + Tune: Optuna with ASHA
on InvertedPendulum, its scheduler killed mid-search and resumed (nothing re-run), early-stopped
trials recorded as stopped, the search report, and the best configuration re-run."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from mprl import search
from mprl.errors import MprlError, SpecError
from mprl.lineage import LineageStore
from mprl.spec import load_pipeline, parse_pipeline

CONFIGS = Path(__file__).parents[1] / "tune_configs"


def td3_search(sweep: dict, tune: dict, **extra) -> dict:
    """A one-phase online TD3 search on InvertedPendulum at a tiny budget."""
    return {"name": "search", "videos": {"selected": False}, "phases": [{
        "name": "on", "algorithm": "td3", "env": "InvertedPendulum-v5", "budget": {"env_steps": 400},
        "evaluation": {"interval": 100, "episodes": 1},
        "config": {"hidden": [32, 32], "random_steps": 100, "learning_starts": 100},
        "sweep": sweep, "tune": tune, **extra}]}


def two_phases(sweep: dict, tune: dict) -> dict:
    """A tiny TD3 phase, then a search phase started from it (its hand-over point may be searched)."""
    first = td3_search({}, {})["phases"][0]
    first = {**{k: v for k, v in first.items() if k not in ("sweep", "tune")}, "name": "pre", "budget": {"env_steps": 200}}
    data = td3_search(sweep, tune, init_from="pre")
    data["phases"][0]["config"] = {"hidden": [32, 32]}
    data["phases"].insert(0, first)
    return data


def problems(data: dict) -> str:
    with pytest.raises(SpecError) as e:
        parse_pipeline(data)
    return str(e.value)


def test_each_distribution_is_validated_and_expanded():
    space = {"actor_lr": {"loguniform": [1e-4, 1e-2]}, "tau": {"uniform": [0.001, 0.02]},
             "rollout_fragment_length": {"randint": [10, 50]}, "utd": {"choice": [1, 2]},
             "gamma": {"grid": [0.98, 0.99]}, "buffer_size": {"loguniform": [1000, 100000]}, "critic_lr": 0.001}
    phase = parse_pipeline(td3_search(space, {"num_samples": 3})).phases[0]
    assert phase.tune.num_samples == 3 and search.is_search(phase)
    from ray.tune.search.sample import Categorical, Float, Integer

    tuned = search.sweep_point_space(phase)
    assert isinstance(tuned["actor_lr"], Float) and "LogUniform" in type(tuned["actor_lr"].get_sampler()).__name__
    assert isinstance(tuned["tau"], Float) and isinstance(tuned["rollout_fragment_length"], Integer)
    assert isinstance(tuned["buffer_size"], Integer)  # loguniform of an integer setting samples integers
    assert isinstance(tuned["utd"], Categorical) and tuned["gamma"] == {"grid_search": [0.98, 0.99]}
    assert tuned["critic_lr"] == 0.001  # a constant of the search
    for _ in range(200):  # bounds included, inside the ranges
        assert 1e-4 <= tuned["actor_lr"].sample() <= 1e-2 and 0.001 <= tuned["tau"].sample() <= 0.02
        assert 10 <= tuned["rollout_fragment_length"].sample() <= 50 and 1000 <= tuned["buffer_size"].sample() <= 100000
    assert {tuned["rollout_fragment_length"].sample() for _ in range(500)} >= {10, 50}  # randint includes both ends
    assert parse_pipeline(parse_pipeline(td3_search(space, {"num_samples": 3})).to_dict()).phases[0].sweep == space  # round trip

    message = problems(td3_search({
        "tau": {"uniform": [0.001, 2.0]},  # hi outside tau's range (≤ 1)
        "utd": {"choice": [0, 2]},  # utd ≥ 1
        "actor_lr": {"loguniform": [0, 0.01]},  # lo > 0
        "gamma": {"uniform": [0.99, 0.9]},  # lo < hi
        "buffer_size": {"uniform": [10, 1000]},  # integer setting
        "rollout_fragment_length": {"randint": [1.5, 4]},
        "learning_starts": {"randint": [0, 5000]},  # 5000 ≥ the budget: no update
        "critic_lr": {"normal": [0, 1]},
        "aplha": {"uniform": [0, 1]},
    }, {"num_samples": 2}))
    for line in [
        "phases[0].sweep.tau.uniform: tau: input should be less than or equal to 1 (got 2.0)",
        "phases[0].sweep.utd.choice: utd: input should be greater than or equal to 1 (got 0)",
        "phases[0].sweep.actor_lr: loguniform needs lo > 0",
        "phases[0].sweep.gamma: uniform needs lo < hi",
        "phases[0].sweep.buffer_size.uniform: 'buffer_size' is an integer setting: use {randint: [lo, hi]}",
        "phases[0].sweep.rollout_fragment_length: randint needs two integers",
        "phases[0].sweep.learning_starts.randint: learning_starts=5000 is not below the budget of 400 env steps",
        "phases[0].sweep.critic_lr: expected a plain value or one distribution",
        "phases[0].sweep.aplha.uniform: unknown setting 'aplha' for td3",
    ]:
        assert line in message, (line, message)
    assert "(with learning_starts=0)" not in message  # only the bad bound is reported

    message = problems(td3_search({"gamma": {"grid": [0.9, 0.99]}}, {"search": "optuna", "num_samples": 2}))
    assert "phases[0].sweep.gamma.grid: grid is expanded by Tune's own variant generator; with search: optuna write {choice: [...]}" in message
    message = problems(td3_search([{"tau": 0.01}], {"num_samples": 4, "rerun_best": {"seeds": 2}}))
    assert "phases[0].tune.num_samples: num_samples needs a search space" in message
    assert "phases[0].tune.rerun_best: rerun_best needs a search space" in message
    message = problems(td3_search({"tau": {"uniform": [0.001, 0.02]}}, {"scheduler": {"type": "hyperband"}}))
    assert "phases[0].tune.scheduler.type: 'hyperband' is not allowed; choose one of 'asha', 'median'" in message
    message = problems(td3_search({"handover": {"uniform": [0.5, 1.5]}}, {"num_samples": 2}))
    assert "phases[0].sweep.handover.uniform: handover searches where this phase starts in its `init_from` phase's budget" in message
    two = two_phases({"handover": {"randint": [0, 1]}, "tau": {"uniform": [0.001, 0.02]}}, {"num_samples": 2})
    assert "phases[1].sweep.handover.randint: handover is a fraction of init_from's budget: use uniform" in problems(two)
    two = two_phases({"handover": {"choice": [0.5, 1.5]}}, {"num_samples": 2})
    assert "phases[1].sweep.handover.choice: handover is a fraction of init_from's budget in (0, 1], got 1.5" in problems(two)
    assert search.searches_handover(parse_pipeline(two_phases({"handover": {"uniform": [0.3, 1.0]}}, {"num_samples": 2})).phases[1])
    rerun = parse_pipeline(td3_search({"tau": {"uniform": [0.001, 0.02]}}, {"seeds": [0, 7], "rerun_best": {"seeds": 3}, "scheduler": "asha"})).phases[0].tune
    assert rerun.rerun_best.seeds == [8, 9, 10] and rerun.scheduler.type == "asha" and rerun.scheduler.reduction_factor == 3


def test_a_missing_searcher_names_the_extra(monkeypatch):
    real = search.importlib.util.find_spec
    monkeypatch.setattr(search.importlib.util, "find_spec", lambda name, *a: None if name == "hyperopt" else real(name, *a))
    message = problems(td3_search({"tau": {"uniform": [0.001, 0.02]}}, {"search": "hyperopt", "num_samples": 2}))
    assert message.count("\n") == 1  # one problem, one line
    assert ("phases[0].tune.search: search algorithm 'hyperopt' needs the optional package 'hyperopt', which is not "
            "installed: pip install 'mprl[search]' (or pip install hyperopt), or use `search: random`") in message
    # a spec validated where the package was installed, run where it is not: the same message, before any trial
    phase = parse_pipeline(td3_search({"tau": {"uniform": [0.001, 0.02]}}, {"search": "optuna", "num_samples": 2})).phases[0]
    phase.tune.search = "hyperopt"
    with pytest.raises(MprlError, match=r"Phase 'on': search algorithm 'hyperopt' needs .* pip install 'mprl\[search\]'"):
        search.search_setup(phase, "evaluation_return", "num_env_steps_lifetime", seed=0)


@pytest.mark.parametrize("name", ["search_kappa.yaml", "search_transition.yaml"])
def test_the_shipped_searches_validate(name):
    spec = load_pipeline(CONFIGS / name)
    online = spec.phases[-1]
    assert search.is_search(online) and online.tune.scheduler.type == "asha" and online.tune.rerun_best
    assert online.tune.num_samples > 1 and search.searched(online)


def test_an_optuna_search_with_asha_stops_trials_early_and_resumes(ray_local, tmp_path):
    """4 points × 1 seed, ASHA (grace 100 env steps, reduction factor 2) over 300 env steps; the
    scheduler actor is killed once two trials have ended, then `mprl resume` continues the search.
    One trial at a time: ASHA's decisions depend on the order trials reach a rung, which two
    concurrent trials leave to the machine's load (CI once saw no trial stopped)."""
    pytest.importorskip("optuna")
    import ray

    from mprl.runner import new_run_id, resume_run, start_scheduler, validate_inputs

    data = td3_search({"actor_lr": {"loguniform": [1e-4, 3e-3]}, "utd": {"choice": [1, 2]}},
                      {"seeds": [0], "num_samples": 4, "search": "optuna", "max_concurrent_trials": 1,
                       "scheduler": {"type": "asha", "grace_period": 100, "reduction_factor": 2}, "rerun_best": {"seeds": 1}})
    data["storage_path"] = str(tmp_path)
    data["phases"][0]["budget"] = {"env_steps": 300}
    spec = parse_pipeline(data)
    validate_inputs(spec, lambda _: None)
    run_id = new_run_id(spec.name)
    run_dir = tmp_path / run_id
    actor = start_scheduler(spec, run_id, run_dir)
    actor.run.remote()
    deadline = time.time() + 300
    ended: list[dict] = []
    while time.time() < deadline and len(ended) < 2:
        time.sleep(1)
        if (run_dir / "lineage.sqlite").exists():
            with LineageStore(run_dir, readonly=True) as store:
                ended = [t for t in store.trials("on") if t["status"] in ("succeeded", "stopped")]
    assert len(ended) >= 2, "the search never ended two trials"
    # Tune saves its experiment (and searcher) state at most every 10 s: what ended more than that
    # before the kill is in it; a trial that ends in the last seconds is continued after the resume.
    time.sleep(12)
    with LineageStore(run_dir, readonly=True) as store:
        stopped_before = [t["trial_id"] for t in store.trials("on") if t["status"] == "stopped"]
        rows_before = {t["trial_id"]: store.metrics(trial_id=t["trial_id"]) for t in ended}
    ray.kill(actor)
    time.sleep(2)

    lines: list[str] = []
    result = resume_run(run_id, str(tmp_path), write=lines.append)
    assert any("[on] resuming its Tune experiment" in line for line in lines)
    with LineageStore(run_dir, readonly=True) as store:
        trials = store.trials("on")
        abandoned = [t for t in trials if t["status"] == "abandoned"]  # started after Tune's last save: re-suggested
        searched = [t for t in trials if not (t["sweep_label"] or "").startswith("best: ") and t["status"] != "abandoned"]
        assert len(searched) == 4  # the searcher's state was restored: 4 points in all, none sampled twice
        assert len({t["sweep_label"] for t in searched}) == 4
        by_id = {t["trial_id"]: t for t in trials}
        for t in ended:  # ended > 10 s before the kill: kept as they were, not re-run
            assert by_id[t["trial_id"]]["status"] == t["status"]
            assert store.metrics(trial_id=t["trial_id"]) == rows_before[t["trial_id"]]
        for t in trials:  # no iteration of any trial recorded twice
            rows = store.metrics(trial_id=t["trial_id"])
            assert len({r["iteration"] for r in rows}) == len(rows)
        stopped = [t for t in searched if t["status"] == "stopped"]
        assert stopped or stopped_before, "ASHA stopped no trial"
        for t in stopped:  # recorded with where it stopped, short of the budget
            assert t["error"].startswith("stopped before its budget at ")
            assert max(r["num_env_steps"] for r in store.metrics(trial_id=t["trial_id"])) < 300
            assert set(json.loads(t["config_json"])) == {"actor_lr", "utd"}
        assert all(t["status"] in ("succeeded", "stopped") for t in trials if t not in abandoned)
        assert all(t["error"].startswith("started after Tune's last experiment-state save") for t in abandoned)
        reruns = [t for t in trials if (t["sweep_label"] or "").startswith("best: ")]
        assert len(reruns) == 1 and reruns[0]["seed"] == 1 and reruns[0]["status"] == "succeeded"
        selected = store.checkpoints("on", selected_only=True)
        assert len(selected) == 1
        best = max(c["evaluation_return"] for c in store.checkpoints("on"))
        assert selected[0]["evaluation_return"] == best  # a stopped trial's checkpoint only if it is the best
    out = run_dir / "on"
    with open(out / "search.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and sum(r["status"] == "stopped" for r in rows) == len(stopped)
    md = (out / "search.md").read_text()
    assert "best configuration: " in md and "re-run on 1 seed(s)" in md
    assert (out / "search.png").stat().st_size > 5000
    assert result.phases[0].trials == 5


def test_selection_with_trials_stopped_early():
    """b was stopped at 200 of 400 updates: `last` and `at 100%` take a, which reached the budget;
    `best` takes b's checkpoint only because it outscores every checkpoint of a."""
    from mprl.scheduler import select_checkpoints

    def ckpts(trial: str, values: list[float], done: bool) -> list[tuple[str, dict]]:
        return [(f"{trial}/c{i}", {"trial_id": trial, "normalized_score": v, "num_updates_lifetime": (i + 1) * 100,
                                    "budget_done": done and i == len(values) - 1}) for i, v in enumerate(values)]

    def phase(select):
        return parse_pipeline({"name": "x", "phases": [{"name": "off", "algorithm": "td3_bc", "env": "Hopper-v5",
                                                         "dataset": "mprl/hopper/random-v0", "budget": {"updates": 400},
                                                         "select": select}]}).phases[0]

    key = "num_updates_lifetime"
    cands = ckpts("a", [1, 2, 3, 4], done=True) + ckpts("b", [3, 9], done=False)
    assert select_checkpoints(cands, phase("best"), "normalized_score", key) == [("b/c1", "best")]
    assert select_checkpoints(cands, phase("last"), "normalized_score", key) == [("a/c3", "last")]  # not b's 9 at 200
    assert select_checkpoints(cands, phase({"at": [0.5, 1.0]}), "normalized_score", key) == [("b/c1", "at 50%"), ("a/c3", "at 100%")]
    cands = ckpts("a", [1, 2, 3, 4], done=True) + ckpts("b", [3, 4], done=False)
    assert select_checkpoints(cands, phase("best"), "normalized_score", key) == [("a/c3", "best")]

    rows = [search.TrialOutcome("t0", 0, "p", {"x": 1}, 9.0, 200, False),  # stopped: best score, but at 200 steps
            search.TrialOutcome("t1", 0, "q", {"x": 2}, 4.0, 400, True),
            search.TrialOutcome("t2", 1, "q", {"x": 2}, 6.0, 400, True)]
    assert search.best_point(rows, "max")[0] == "q"
    assert search.best_point(rows[:1], "max")[0] == "p"  # nothing completed: the stopped ones are ranked


def test_a_searched_hand_over_point_maps_to_its_checkpoint():
    """Fraction → the first checkpoint at or after it, from the trial best there; Tune's own
    search resolves it in each trial's config, with the same values for every seed."""
    from ray import tune
    from ray.tune.search.variant_generator import generate_variants

    rows = [{"trial_id": t, "path": f"{t}/c{i}", "num_updates": (i + 1) * 100, "normalized_score": v}
            for t, vals in (("a", [1, 5, 3, 2]), ("b", [4, 4, 6])) for i, v in enumerate(vals)]  # b stopped at 300
    lookup = search.HandoverLookup.from_checkpoints(rows, 400, "num_updates", "normalized_score", "max", resolve=lambda p: "/run/" + p)
    assert lookup.table == [(100, "/run/b/c0"), (200, "/run/a/c1"), (300, "/run/b/c2"), (400, "/run/a/c3")]
    assert [lookup.path(f) for f in (0.1, 0.25, 0.5, 0.51, 0.75, 1.0)] == ["/run/b/c0", "/run/b/c0", "/run/a/c1", "/run/b/c2", "/run/b/c2", "/run/a/c3"]
    space = {"seed": tune.grid_search([0, 1]), "sweep_point": {"handover": tune.uniform(0.1, 1.0), "init_checkpoint": tune.sample_from(lookup)}}
    for _ in range(5):
        variants = [v for _, v in generate_variants(space, constant_grid_search=True)]
        assert [v["seed"] for v in variants] == [0, 1]
        assert variants[0]["sweep_point"] == variants[1]["sweep_point"]
        assert variants[0]["sweep_point"]["init_checkpoint"] == lookup.path(variants[0]["sweep_point"]["handover"])


def test_early_stopping_runs_on_the_phase_axis():
    """ASHA / median stopping count budget units: updates offline, env steps online; the grace
    period defaults to one evaluation interval and ASHA's max_t is the budget."""
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule

    offline = parse_pipeline({"name": "x", "phases": [{
        "name": "off", "algorithm": "td3_bc", "env": "Hopper-v5", "dataset": "mprl/hopper/random-v0",
        "budget": {"updates": 5000}, "evaluation": {"interval": 500}, "sweep": {"alpha": {"uniform": [1.0, 4.0]}},
        "tune": {"num_samples": 4, "scheduler": {"type": "asha", "reduction_factor": 2}}}]}).phases[0]
    asha = search.trial_scheduler(offline, "normalized_score", "num_updates_lifetime")
    assert isinstance(asha, ASHAScheduler) and asha._time_attr == "num_updates_lifetime"
    assert asha._max_t == 5000 and asha._brackets[0].rf == 2 and [m for m, _ in asha._brackets[0]._rungs] == [4000, 2000, 1000, 500]
    online = parse_pipeline(td3_search({"tau": {"uniform": [0.001, 0.02]}}, {"num_samples": 3, "scheduler": {"type": "median", "grace_period": 200}})).phases[0]
    median = search.trial_scheduler(online, "evaluation_return", "num_env_steps_lifetime")
    assert isinstance(median, MedianStoppingRule) and median._time_attr == "num_env_steps_lifetime" and median._grace_period == 200
