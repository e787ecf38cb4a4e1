"""The regime diagnosis at the start of every warm-started phase, and `regime: auto` (Li, Ni, Sun,
Bacon): the pure family → settings mapping, the spec's refusals, every shipped pipeline
validating, then TD3+BC → (hybrid TD3 with `regime: auto`, online TD3 diagnosed by default and
charged) on a real local Ray with real Minari data: the lineage's record, its numbers checked
against a fresh evaluation of the same checkpoint, the trials' settings, `mprl lineage show`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_web import browser  # noqa: F401  (the headless Chromium fixture)

from mprl.errors import SpecError
from mprl.regime import WARMUP_STEPS, diagnose, family_settings, intervention

ENV = "InvertedPendulum-v5"
DATA = "mprl/invertedpendulum/controller-mix40-v0"  # the `mixed_data` fixture (tests/conftest.py)
CONFIGS = Path(__file__).parents[1] / "tune_configs"

# ---------------------------------------------------------------- the mapping (pure)

SUPERIOR = diagnose([100.0, 101.0, 99.0], [10.0, 12.0, 11.0, 9.0])
INFERIOR = diagnose([10.0, 11.0, 9.0], [100.0, 102.0, 98.0, 99.0])
COMPARABLE = diagnose([50.0, 60.0, 40.0], [49.0, 61.0, 41.0, 52.0])


def test_each_regime_maps_to_its_family_settings():
    assert (SUPERIOR.regime, INFERIOR.regime, COMPARABLE.regime) == ("Superior", "Inferior", "Comparable")
    up = intervention("auto", SUPERIOR, 20_000, {})
    assert up.family == "pi0_centric" and up.applied == {"warmup_steps": 1000, "offline_replay": "none"}  # 5% of 20,000
    assert "Superior" in up.why and "π0 is significantly stronger" in up.why
    assert intervention("auto", SUPERIOR, 1_000_000, {}).applied["warmup_steps"] == WARMUP_STEPS  # WSRL's 5,000, not 5% of 1M
    down = intervention("auto", INFERIOR, 20_000, {})
    assert down.family == "d_centric" and down.applied == {"offline_replay": "symmetric", "offline_replay_ratio": 0.5}
    assert intervention("auto", COMPARABLE, 20_000, {}).family == "d_centric"  # COMPARABLE_FAMILY
    assert family_settings("pi0_centric", 20_000, "online") == {"warmup_steps": 1000}  # an online phase replays no dataset anyway


def test_the_phase_written_settings_win_and_are_recorded():
    iv = intervention("auto", INFERIOR, 20_000, {"offline_replay_ratio": 0.25})
    assert iv.applied == {"offline_replay": "symmetric"} and iv.written == {"offline_replay_ratio": 0.25}
    iv = intervention("auto", INFERIOR, 20_000, {"replay": "mixed", "offline_ratio": 0.3})  # the same choice in the sampler's words
    assert iv.applied == {} and iv.written == {"replay": "mixed", "offline_ratio": 0.3}
    iv = intervention("auto", SUPERIOR, 20_000, {"reset": ["actor"]})  # a warm-up would collect with a replaced π0
    assert "warmup_steps" not in iv.applied and iv.written == {"reset": ["actor"]}
    iv = intervention("d_centric", SUPERIOR, 20_000, {})  # a family written: applied whatever the diagnosis says
    assert iv.family == "d_centric" and "written in the phase" in iv.why


# ---------------------------------------------------------------- the spec


def _spec(phases: list[dict], storage: str = "/tmp/unused") -> dict:
    return {"name": "regime", "storage_path": storage, "videos": {"selected": False}, "phases": phases}


OFFLINE = {"name": "pre", "algorithm": "td3_bc", "env": ENV, "dataset": DATA, "budget": {"updates": 100}}
HYBRID = {"name": "fine", "algorithm": "td3", "paradigm": "hybrid", "env": ENV, "dataset": DATA, "init_from": "pre",
          "budget": {"env_steps": 1000}}


@pytest.mark.parametrize("phases, expected", [
    ([{**OFFLINE, "regime": "auto"}], "this is an offline phase"),
    ([{**HYBRID, "init_from": None, "regime": "auto"}], "needs a warm-started phase"),
    ([OFFLINE, {**HYBRID, "paradigm": "online", "dataset": None, "regime": "auto"}], "'offline_replay' only applies to hybrid phases"),
    ([{**HYBRID, "dataset": None, "paradigm": "online", "init_from": {"checkpoint": "/tmp"}, "regime": "pi0_centric"}],
     "has no `dataset:` and it starts from a checkpoint"),
    ([{**OFFLINE, "algorithm": "sac", "paradigm": "online", "dataset": None, "budget": {"env_steps": 1000}},
      {**HYBRID, "paradigm": "online", "dataset": None, "init_from": "pre", "regime": "pi0_centric"}],
     "the phase it starts from (pre) has no dataset either"),
    ([OFFLINE, {**HYBRID, "regime": "sometimes"}], "choose one of 'diagnose', 'off', 'auto', 'pi0_centric', 'd_centric'"),
    ([OFFLINE, {**HYBRID, "regime": {"mode": "auto", "episodes": 1}}], "regime.episodes: must be >= 2"),
])
def test_spec_refuses_regime_misuse(phases, expected):
    from mprl.spec import parse_pipeline

    with pytest.raises(SpecError) as e:
        parse_pipeline(_spec(phases), source="regime")
    assert expected in str(e.value)


def test_regime_settings_parse_and_round_trip():
    from mprl.spec import parse_pipeline

    spec = parse_pipeline(_spec([OFFLINE, {**HYBRID, "regime": False}, {**HYBRID, "name": "f2", "regime": "auto"}]), source="regime")
    assert spec.phase("fine").regime.mode == "off"  # YAML's `regime: off` reads as false
    assert spec.phase("f2").regime.mode == "auto" and spec.phase("f2").regime.episodes == 5
    assert spec.phase("pre").regime.mode == "diagnose"  # the default (an offline phase is never diagnosed)
    assert parse_pipeline(spec.to_dict(), source="again").to_dict() == spec.to_dict()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_pipeline_validates(path):
    from mprl.spec import load_pipeline

    load_pipeline(path)


def test_the_regimes_pipeline_covers_every_pretraining_dataset_and_family():
    from mprl.spec import load_pipeline

    spec = load_pipeline(CONFIGS / "regimes.yaml")
    pre = {(p.algorithm, p.dataset.build.quality) for p in spec.phases if p.resolved_paradigm == "offline"}
    assert pre == {(a, q) for a in ("td3_bc", "iql") for q in ("random", "medium", "expert")}
    fine = [p for p in spec.phases if p.resolved_paradigm == "hybrid"]
    assert {(p.init_from.phase, p.regime.mode) for p in fine} == {(p.name, m) for p in spec.phases if p.resolved_paradigm == "offline"
                                                                   for m in ("pi0_centric", "d_centric", "auto")}


# ---------------------------------------------------------------- a real pipeline


@pytest.fixture(scope="module")
def regime_run(ray_local, mixed_data, tmp_path_factory):
    from mprl.runner import run_pipeline
    from mprl.spec import parse_pipeline

    small = {"hidden": [32, 32]}
    evaluation = {"episodes": 2, "seed": 7}
    phases = [
        {**OFFLINE, "budget": {"updates": 100}, "tune": {"seeds": [0]}, "evaluation": {"interval": 100, **evaluation}, "config": small},
        {**HYBRID, "budget": {"env_steps": 400}, "tune": {"seeds": [0]}, "evaluation": {"interval": 400, **evaluation}, "config": small,
         "regime": {"mode": "auto", "episodes": 3}},
        {"name": "plain", "algorithm": "td3", "env": ENV, "init_from": "pre", "budget": {"env_steps": 2100}, "tune": {"seeds": [0]},
         "evaluation": {"interval": 2100, **evaluation}, "config": small, "regime": {"mode": "diagnose", "episodes": 2, "charge": True}},  # ≤ 2,000 steps charged
    ]
    lines: list[str] = []
    spec = parse_pipeline(_spec(phases, str(tmp_path_factory.mktemp("runs"))), source="regime_run")
    return run_pipeline(spec, write=lines.append), lines


def _regime(store, phase: str) -> tuple[dict, dict]:
    node = next(n for n in store.nodes() if n["phase"] == phase)
    return node, json.loads(node["regime_json"])


def test_the_diagnosis_is_recorded_with_its_numbers(regime_run):
    """J(π0) is the selected TD3+BC checkpoint's deterministic return (a fresh evaluation with the
    same seeds gives the same returns), J(π_D) the dataset's mean episode return, and the regime
    is what the Welch test gives on them."""
    from mprl.datasets import resolve_reference_scores
    from mprl.datasets.store import episode_returns
    from mprl.evaluation import evaluate_policy
    from mprl.lineage import LineageStore
    from mprl.serve.policy import load_policy

    result, lines = regime_run
    with LineageStore(result.run_dir, readonly=True) as store:
        fine, r = _regime(store, "fine")
        (ck,) = store.checkpoints(next(n["node_id"] for n in store.nodes() if n["phase"] == "pre"), selected_only=True)
        pre = next(n for n in store.nodes() if n["phase"] == "pre")
        path = str(store.abs(ck["path"]))
    assert pre["regime_json"] is None  # an offline phase is not diagnosed
    d = r["diagnosis"]
    assert r["checkpoint_id"] == ck["checkpoint_id"] == fine["parent_checkpoint_id"] and r["dataset"] == DATA
    assert r["episodes"] == d["j_pi0"]["n"] == 3 and len(d["extra"]["pi0_returns"]) == 3
    data = episode_returns(DATA)
    assert d["j_data"]["mean"] == pytest.approx(float(np.mean(data))) and d["j_data"]["n"] == len(data) > 2
    again = evaluate_policy(load_policy(path).act_one, ENV, 3, seed=10_000)
    assert d["extra"]["pi0_returns"] == pytest.approx([float(x) for x in again.returns])
    assert r["env_steps"] == int(sum(again.lengths)) >= 3 and not r["charged"]
    assert d["j_pi0"]["low"] <= d["j_pi0"]["mean"] <= d["j_pi0"]["high"] and 0 < d["j_data"]["mean"] < 1000
    check = diagnose(again.returns, data, refs=resolve_reference_scores(ENV, DATA))
    assert (r["regime"], r["family"]) == (check.regime, check.family)
    assert fine["budget_value"] == 400  # not charged: the budget is the phase's
    assert any(line.startswith("[fine] regime ") and r["regime"] in line for line in lines)


def test_auto_applies_its_family_to_the_trials_and_says_why(regime_run):
    from mprl.lineage import LineageStore

    result, _ = regime_run
    with LineageStore(result.run_dir, readonly=True) as store:
        fine, r = _regime(store, "fine")
        (trial,) = store.trials(fine["node_id"])
        params = json.loads((Path(store.abs(trial["path"])) / "params.json").read_text())
    iv = r["intervention"]
    assert r["mode"] == "auto" and iv["family"] == r["family"]
    assert iv["applied"] == family_settings(r["family"], 400, "hybrid") and iv["written"] == {}
    assert iv["why"].startswith(f"regime: auto → {r['family']}: {r['regime']}")
    for key, value in iv["applied"].items():  # what the trial really ran with
        assert params[key] == value, key


def test_a_default_phase_is_diagnosed_from_its_parent_data_and_charged(regime_run):
    """The online phase has no dataset of its own: the diagnosis uses TD3+BC's; `charge: true`
    takes its env steps from the phase's budget, and nothing is applied (`diagnose`)."""
    from mprl.lineage import LineageStore

    result, _ = regime_run
    with LineageStore(result.run_dir, readonly=True) as store:
        plain, r = _regime(store, "plain")
    assert r["dataset"] == DATA and "pre" in r["data_from"] and r["episodes"] == 2
    assert r["charged"] and plain["budget_value"] == 2100 - r["env_steps"] == result.phases[-1].env_steps
    assert "intervention" not in r


def test_lineage_show_prints_the_diagnosis(regime_run, capsys):
    from mprl.cli import main
    from mprl.lineage import LineageStore

    result, _ = regime_run
    with LineageStore(result.run_dir, readonly=True) as store:
        _, r = _regime(store, "fine")
    assert main(["lineage", "show", str(result.run_dir)]) == 0
    out = capsys.readouterr().out
    j0, jd = r["diagnosis"]["j_pi0"], r["diagnosis"]["j_data"]
    assert f"regime {r['regime']}: J(π0) {j0['mean']:.1f} ± {(j0['high'] - j0['low']) / 2:.1f} (n 3) vs J(π_D) {jd['mean']:.1f}" in out
    assert out.count("regime ") >= 2 and f"regime: auto → {r['family']}" in out
    assert "settings: " + ", ".join(f"{k}={v}" for k, v in r["intervention"]["applied"].items()) in out


def test_bench_regimes_writes_the_table(regime_run, tmp_path):
    """One pretrained checkpoint, one family applied (auto's): a row with that family's best
    score, the other family missing, so the prediction is not scored."""
    import csv

    from mprl.cli import main
    from mprl.lineage import LineageStore

    result, _ = regime_run
    with LineageStore(result.run_dir, readonly=True) as store:
        _, r = _regime(store, "fine")
    assert main(["bench", "regimes", str(result.run_dir), "-o", str(tmp_path)]) == 0
    (row,) = list(csv.DictReader((tmp_path / "regimes.csv").read_text().splitlines()))
    assert row["regime"] == r["regime"] and row["start"] == r["checkpoint_id"] and row["algorithm"] == "td3_bc"
    assert row[f"best_{r['intervention']['family']}"] == str(result.phases[1].evaluation_return) and row["held"] == ""
    assert "0 of 0 held" in (tmp_path / "regimes.md").read_text() and (tmp_path / "regimes.png").stat().st_size > 1000


def test_the_page_shows_each_diagnosis(regime_run, browser, tmp_path):
    """`mprl serve` over the run; in headless Chromium the lineage box has one line per diagnosed
    phase run with the lineage's regime, J(π0) and J(π_D) (mean ± half the CI) and auto's reason."""
    from selenium.webdriver.common.by import By
    from test_serve import _start, _stop
    from test_web import wait_for

    from mprl.lineage import LineageStore

    result, _ = regime_run
    with LineageStore(result.run_dir, readonly=True) as store:
        diagnosed = {n["node_id"]: json.loads(n["regime_json"]) for n in store.nodes() if n["regime_json"]}
    assert len(diagnosed) == 2  # fine (auto) and plain (diagnosed by default)
    run_dir = Path(result.run_dir)
    proc, url = _start(run_dir.parent, tmp_path / "serve.log")
    try:
        browser.get(f"{url}/#run={run_dir.name}")
        wait_for(browser, f"document.querySelectorAll('#lineage p.regime').length === {len(diagnosed)}", what="the regime lines")
        lines = {p.get_attribute("data-node-id"): p.text for p in browser.find_elements(By.CSS_SELECTOR, "#lineage p.regime")}
    finally:
        _stop(proc)
    assert set(lines) == set(diagnosed)
    for node_id, r in diagnosed.items():
        j0, jd = r["diagnosis"]["j_pi0"], r["diagnosis"]["j_data"]
        assert lines[node_id].startswith(f"{node_id}: regime {r['regime']} · J(π0) {j0['mean']:.1f} ± {(j0['high'] - j0['low']) / 2:.1f} "
                                         f"vs J(π_D) {jd['mean']:.1f} ± {(jd['high'] - jd['low']) / 2:.1f} · {r['family']}")
    ((node_id, auto),) = [(k, r) for k, r in diagnosed.items() if r.get("intervention")]
    assert f"regime: auto → {auto['intervention']['family']}" in lines[node_id] and "settings: " in lines[node_id]
