"""The pipeline spec: defaults, shorthand forms, and one readable SpecError per invalid file."""

from __future__ import annotations

import copy
import importlib.util
import os
import textwrap

import pytest
from pydantic import ValidationError

from pydantic import Field

from algorithms.common.settings import Settings
from algorithms.registry import AlgorithmInfo
from mprl import catalogue
from mprl.errors import MprlError, SpecError
from mprl.spec import (
    DatasetBuild,
    Phase,
    PipelineSpec,
    UnknownPhase,
    load_pipeline,
    parse_pipeline,
)

TWO_PHASES = {
    "name": "quickstart",
    "phases": [
        {
            "name": "pretrain",
            "algorithm": "td3_bc",
            "env": "Hopper-v5",
            "dataset": "mprl/hopper/random-v0",
            "budget": {"updates": 5000},
        },
        {
            "name": "finetune",
            "algorithm": "td3",
            "env": "Hopper-v5",
            "budget": {"env_steps": 20001},
            "init_from": "pretrain",
        },
    ],
}


def spec_with(**changes) -> dict:
    """TWO_PHASES with changes at YAML-like paths: spec_with(**{"phases.1.budget": {...}})."""
    data = copy.deepcopy(TWO_PHASES)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return data


DELETE = object()


def problems_of(data: dict, source: str = "pipe.yaml") -> str:
    with pytest.raises(SpecError) as info:
        parse_pipeline(data, source)
    message = str(info.value)
    assert message.startswith(f"{source}: ")
    assert "Traceback" not in message and "errors.pydantic.dev" not in message
    return message


# --------------------------------------------------------------------------- valid specs


def test_two_phase_spec_defaults():
    spec = parse_pipeline(copy.deepcopy(TWO_PHASES))
    assert spec.name == "quickstart"
    assert spec.storage_path == "./mprl_results"
    assert spec.seed == 0
    assert spec.ray.address is None and spec.ray.num_cpus is None
    assert spec.phase_names == ["pretrain", "finetune"]
    assert spec.source == "<dict>"

    pre, fine = spec.phases
    assert pre.resolved_paradigm == pre.paradigm == "offline"
    assert (pre.budget_unit, pre.budget_value) == ("updates", 5000)
    assert pre.dataset_id == "mprl/hopper/random-v0" and pre.dataset_build is None
    assert pre.init_from is None and pre.init_from_phase is None and pre.init_checkpoint_path is None
    assert pre.evaluation.interval == 500  # budget / 10
    assert (pre.evaluation.episodes, pre.evaluation.seed) == (10, 10_000)
    assert pre.config == {}
    assert pre.tune.seeds == [0] and pre.tune.metric == "normalized_score" and pre.tune.mode == "max"
    assert pre.tune.max_concurrent_trials is None and pre.tune.max_failures == 1
    assert pre.tune.checkpoint_num_to_keep is None
    assert pre.select.rule == "best"

    assert fine.resolved_paradigm == "online"
    assert (fine.budget_unit, fine.budget_value) == ("env_steps", 20001)
    assert fine.evaluation.interval == 2001  # rounded up
    assert fine.dataset_id is None
    assert fine.init_from_phase == "pretrain"
    assert spec.phase("finetune") is fine and spec.phase_index("finetune") == 1


def test_interval_is_at_least_one_and_explicit_values_are_kept():
    data = spec_with(**{"phases.0.budget": {"updates": 3}, "phases.1.evaluation": {"interval": 7, "episodes": 5}})
    spec = parse_pipeline(data)
    assert spec.phases[0].evaluation.interval == 1
    assert (spec.phases[1].evaluation.interval, spec.phases[1].evaluation.episodes) == (7, 5)


def test_shorthand_and_full_forms():
    data = spec_with(**{
        "storage_path": "~/results",
        "ray": {"address": "auto", "num_cpus": 2},
        "phases.0.dataset": {"id": "mprl/hopper/medium-replay-v0", "build": {"size": 20000}},
        "phases.0.paradigm": "offline",
        "phases.0.budget": {"updates": "1e6"},  # PyYAML reads 1e6 as a string
        "phases.1.init_from": {"checkpoint": "~/ckpt"},
        "phases.1.budget": {"env_steps": 3.0e+5},
        "phases.1.tune": {"seeds": 3, "max_failures": -1},
        "phases.1.evaluation": None,
        "phases.1.config": None,
        "phases.1.select": "last",
    })
    spec = parse_pipeline(data)
    assert spec.storage_path == os.path.expanduser("~/results")
    assert spec.resolved_storage_path == os.path.abspath(os.path.expanduser("~/results"))
    pre, fine = spec.phases
    assert pre.budget_value == 1_000_000
    assert pre.dataset_build == DatasetBuild(quality="medium-replay", size=20000, budget=None, seed=0)
    assert fine.init_from_phase is None and fine.init_checkpoint_path == os.path.expanduser("~/ckpt")
    assert fine.budget_value == 300_000 and fine.tune.seeds == [3] and fine.tune.max_failures == -1
    assert fine.evaluation.episodes == 10 and fine.config == {} and fine.select.rule == "last"
    assert pre.dataset_build.size == 20000


def test_dataset_build_true_uses_defaults_and_reads_quality_from_id():
    data = spec_with(**{"phases.0.dataset": {"id": "mprl/hopper/expert-v1", "build": True}})
    build = parse_pipeline(data).phases[0].dataset_build
    assert build.quality == "expert" and build.size == 1_000_000 and build.seed == 0


@pytest.mark.parametrize(
    "storage", ["s3://bucket/prefix", "gs://bucket/x", "file:///tmp/results"]
)
def test_storage_uris_are_kept(storage):
    spec = parse_pipeline(spec_with(storage_path=storage))
    assert spec.storage_path == storage == spec.resolved_storage_path and spec.storage_is_uri


@pytest.mark.parametrize("address", [None, "auto", "local", "ray://head:10001", "127.0.0.1:6379"])
def test_ray_addresses(address):
    assert parse_pipeline(spec_with(ray={"address": address})).ray.address == address


def test_round_trip_through_a_yaml_file(tmp_path):
    path = tmp_path / "pipe.yaml"
    path.write_text(textwrap.dedent("""\
        # offline pre-training, then online fine-tuning
        name: quickstart.v1
        storage_path: ./results
        seed: 3
        ray: {address: null, num_cpus: 2}
        phases:
          - name: pretrain
            algorithm: td3_bc
            env: Hopper-v5
            dataset:
              id: mprl/hopper/random-v0
              build: {quality: random, size: 20000, budget: null, seed: 0}
            budget: {updates: 5000}
            evaluation: {interval: 1000, episodes: 10, seed: 10000}
            tune: {seeds: [0, 1], metric: normalized_score, mode: max, max_concurrent_trials: 2}
          - name: finetune
            algorithm: td3
            env: Hopper-v5
            budget: {env_steps: 10_000}
            init_from: pretrain
            select: last
        """))
    spec = load_pipeline(path)
    assert spec.source == str(path)
    assert spec.phases[0].dataset_build.size == 20000
    assert spec.phases[0].tune.seeds == [0, 1]
    assert spec.phases[1].budget_value == 10_000

    again = tmp_path / "again.yaml"
    again.write_text(spec.to_yaml())
    assert load_pipeline(again).to_dict() == spec.to_dict()  # (== also compares the source file)
    assert parse_pipeline(spec.to_dict(), str(path)) == spec


def test_phase_lookup_error():
    spec = parse_pipeline(copy.deepcopy(TWO_PHASES))
    with pytest.raises(UnknownPhase) as info:
        spec.phase("finetun")
    assert isinstance(info.value, MprlError) and isinstance(info.value, KeyError)
    assert "did you mean 'finetune'?" in str(info.value)


def test_models_built_directly_enforce_the_same_rules():
    with pytest.raises(ValidationError) as info:
        Phase.model_validate({"name": "p", "algorithm": "td3", "env": "Hopper-v5", "budget": {"updates": 10}})
    assert "counted in environment steps" in str(info.value)
    with pytest.raises(ValidationError):
        PipelineSpec.model_validate(spec_with(**{"phases.1.init_from": "nope"}))


# --------------------------------------------------------------------------- one SpecError per file

ERROR_CASES = {
    "unknown top-level field": (
        spec_with(sed=3),
        ["sed: unknown field 'sed'; did you mean 'seed'?", "Allowed fields: name, storage_path, seed, ray, videos, tracking, phases"],
    ),
    "unknown phase field": (
        spec_with(**{"phases.0.evalution": {"interval": 5}}),
        ["phases[0].evalution: unknown field 'evalution'; did you mean 'evaluation'?", "Allowed fields: name, algorithm"],
    ),
    "algorithm setting outside config": (
        spec_with(**{"phases.0.alpha": 2.5}),
        ["phases[0].alpha: unknown field 'alpha'.", "Algorithm settings go under `config:`"],
    ),
    "unknown algorithm": (
        spec_with(**{"phases.0.algorithm": "td3bc"}),
        ["phases[0].algorithm: unknown algorithm 'td3bc'; did you mean 'td3_bc'?", f"Known algorithms: {', '.join(catalogue.algorithm_names())}"],
    ),
    "unknown env": (
        spec_with(**{"phases.1.env": "Hoper-v5"}),
        ["phases[1].env: unknown environment 'Hoper-v5'; did you mean 'Hopper-v5'?"],
    ),
    "env id in the wrong case": (
        spec_with(**{"phases.1.env": "hopper-v5"}),
        ["phases[1].env: unknown environment 'hopper-v5'; did you mean 'Hopper-v5'?"],
    ),
    "missing required fields": (
        spec_with(**{"name": DELETE, "phases.0.env": DELETE}),
        ["name: required field is missing", "phases[0].env: required field is missing: a registered Gymnasium"],
    ),
    "missing phases": (
        {"name": "x"},
        ["phases: required field is missing"],
    ),
    "no phases": (
        spec_with(phases=[]),
        ["phases: must not be empty"],
    ),
    "phase not a mapping": (
        spec_with(**{"phases.1": "finetune"}),
        ["phases[1]: expected a mapping with name, algorithm, env, budget, ..., got 'finetune'"],
    ),
    "wrong type for a budget": (
        spec_with(**{"phases.1.budget": {"env_steps": "ten"}}),
        ["phases[1].budget.env_steps: expected an integer, got 'ten'"],
    ),
    "boolean is not an integer": (
        spec_with(**{"phases.0.evaluation": {"episodes": True}}),
        ["phases[0].evaluation.episodes: expected an integer, got true"],
    ),
    "budget not a mapping": (
        spec_with(**{"phases.1.budget": 5000}),
        ["phases[1].budget: expected a mapping such as {updates: 1000000} (offline) or {env_steps: 300000}", "got 5000"],
    ),
    "budget with both units": (
        spec_with(**{"phases.1.budget": {"env_steps": 10, "updates": 10}}),
        ["phases[1].budget: give exactly one of updates (offline) or env_steps (online, hybrid), not both"],
    ),
    "budget with neither unit": (
        spec_with(**{"phases.1.budget": {}}),
        ["phases[1].budget: give exactly one of updates", "this online phase uses `budget: {env_steps: N}`"],
    ),
    "budget in updates for an online algorithm": (
        spec_with(**{"phases.1.budget": {"updates": 5000}}),
        [
            "phases[1].budget.updates: this is an online td3 phase: its budget is counted in environment steps",
            "write `budget: {env_steps: N}` instead of `updates: 5000`",
        ],
    ),
    "budget in env steps for an offline algorithm": (
        spec_with(**{"phases.0.budget": {"env_steps": 5000}}),
        ["phases[0].budget.env_steps: this is an offline td3_bc phase: its budget is counted in gradient updates"],
    ),
    "non-positive budget": (
        spec_with(**{"phases.0.budget": {"updates": 0}}),
        ["phases[0].budget.updates: expected a positive integer, got 0"],
    ),
    "init_from a later phase": (
        spec_with(**{"phases.0.init_from": "finetune"}),
        ["phases[0].init_from: 'finetune' is a later phase (phases[1]); init_from may only name an earlier phase"],
    ),
    "init_from an unknown phase": (
        spec_with(**{"phases.1.init_from": "pretrian"}),
        ["phases[1].init_from: unknown phase 'pretrian'; did you mean 'pretrain'?", "earlier phases: pretrain"],
    ),
    "init_from itself": (
        spec_with(**{"phases.1.init_from": "finetune"}),
        ["phases[1].init_from: a phase cannot start from itself ('finetune')"],
    ),
    "init_from of the wrong shape": (
        spec_with(**{"phases.1.init_from": 3}),
        ["phases[1].init_from: expected null, the name of an earlier phase or a mapping {checkpoint:", "got 3"],
    ),
    "duplicate phase names": (
        spec_with(**{"phases.1.name": "pretrain", "phases.1.init_from": None}),
        ["phases[1].name: duplicate phase name 'pretrain' (already used by phases[0])"],
    ),
    "bad phase name": (
        spec_with(**{"phases.1.name": "fine tune"}),
        ["phases[1].name: 'fine tune' is not a valid name: use only letters, digits, '_' and '-'"],
    ),
    "paradigm mismatch": (
        spec_with(**{"phases.0.paradigm": "online"}),
        ["phases[0].paradigm: td3_bc does not run online phases; it supports offline"],
    ),
    "unknown paradigm": (
        spec_with(**{"phases.0.paradigm": "ofline"}),
        ["phases[0].paradigm: 'ofline' is not allowed; choose one of 'offline', 'online', 'hybrid'; did you mean 'offline'?"],
    ),
    "dataset missing for an offline algorithm": (
        spec_with(**{"phases.0.dataset": DELETE}),
        ["phases[0].dataset: required: this offline td3_bc phase learns from a dataset"],
    ),
    "dataset for an online algorithm": (
        spec_with(**{"phases.1.dataset": "mprl/hopper/random-v0"}),
        ["phases[1].dataset: an online td3 phase takes no dataset; remove `dataset:` (or write `paradigm: hybrid` to learn from both)"],
    ),
    "malformed dataset id": (
        spec_with(**{"phases.0.dataset": "hopper random"}),
        ["phases[0].dataset.id: 'hopper random' is not a Minari dataset id: expected '(namespace/)name-vN'"],
    ),
    "unknown dataset quality": (
        spec_with(**{"phases.0.dataset": {"id": "mprl/hopper/random-v0", "build": {"quality": "mediun"}}}),
        ["phases[0].dataset.build.quality: 'mediun' is not allowed; choose one of 'random', 'medium'", "did you mean 'medium'?"],
    ),
    "quality not in the id": (
        spec_with(**{"phases.0.dataset": {"id": "mprl/hopper/mine-v0", "build": {}}}),
        ["phases[0].dataset.build.quality: required: the dataset id 'mprl/hopper/mine-v0' does not name a quality"],
    ),
    "bad tune settings": (
        spec_with(**{"phases.1.tune": {"seeds": [0, "one", 0], "mode": "maxx", "metric": "score"}}),
        [
            "phases[1].tune.seeds[1]: expected an integer, got 'one'",
            "phases[1].tune.mode: 'maxx' is not allowed; choose one of 'max', 'min'; did you mean 'max'?",
            "phases[1].tune.metric: 'score' is not allowed; choose one of 'normalized_score', 'evaluation_return'",
        ],
    ),
    "duplicate seeds": (
        spec_with(**{"phases.1.tune": {"seeds": [1, 2, 1]}}),
        ["phases[1].tune.seeds[2]: seed 1 appears twice"],
    ),
    "empty seeds": (
        spec_with(**{"phases.1.tune": {"seeds": []}}),
        ["phases[1].tune.seeds: must not be empty"],
    ),
    "bad select": (
        spec_with(**{"phases.1.select": "lst"}),
        ["phases[1].select: 'lst' is not allowed; choose 'best', 'last', {top_k: K} or {at: [0.25, 0.5, 1.0]}; did you mean 'last'?"],
    ),
    "bad ray address": (
        spec_with(ray={"address": "nowhere"}),
        ["ray.address: expected null (start an embedded local Ray), 'auto'", "got 'nowhere'"],
    ),
    "bad pipeline name and storage": (
        spec_with(name="quick start", storage_path=""),
        ["name: 'quick start' is not a valid name", "storage_path: expected a local folder or a URI", "got ''"],
    ),
    "init_from with neither form": (
        spec_with(**{"phases.1.init_from": {}}),
        ["phases[1].init_from: give an earlier phase's name, {checkpoint: PATH} or {best_of: [PHASE, ...]}"],
    ),
    "init_from with both forms": (
        spec_with(**{"phases.1.init_from": {"phase": "pretrain", "checkpoint": "/ck"}}),
        ["phases[1].init_from: give one of an earlier phase's name, a checkpoint or best_of, not phase and checkpoint"],
    ),
    "non-string keys": (
        {**spec_with(**{"phases.1.config": {1: 2}}), 7: "x"},
        ["(top level): keys must be strings, got 7", "phases[1].config: keys must be strings, got 1"],
    ),
    "config not a mapping": (
        spec_with(**{"phases.1.config": [1, 2]}),
        ["phases[1].config: expected a mapping, got a list [1, 2]"],
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_each_problem_reads_well(case):
    data, expected = ERROR_CASES[case]
    message = problems_of(data)
    for text in expected:
        assert text in message, f"{text!r} not in:\n{message}"


def test_every_problem_is_listed_once_one_per_line():
    data = spec_with(**{
        "sed": 1,
        "phases.0.env": "Hoper-v5",
        "phases.0.budget": {"env_steps": 10},
        "phases.0.evalution": {},
        "phases.1.budget": {"env_steps": "ten"},
        "phases.1.init_from": "nope",
    })
    message = problems_of(data)
    head, *lines = message.splitlines()
    assert head == "pipe.yaml: invalid pipeline spec (6 problems):"
    assert [line.split(":")[0] for line in lines] == [
        "  - sed",
        "  - phases[0].evalution",
        "  - phases[0].env",
        "  - phases[0].budget.env_steps",
        "  - phases[1].budget.env_steps",
        "  - phases[1].init_from",
    ]


# --------------------------------------------------------------------------- algorithm settings (`config:`)


class FakeSettings(Settings):
    alpha: float = Field(2.5, gt=0, description="a weight")
    actor_lr: float = Field(3e-4, gt=0, description="a learning rate")
    updates_per_iteration: int = Field(1000, ge=1, description="set by evaluation.interval")
    env_steps_per_iteration: int = Field(1000, ge=1, description="set by evaluation.interval")


class FakeBCConfig:
    """Stands in for an mprl AlgorithmConfig: the spec reads its `settings` model only."""

    settings = FakeSettings


class _FailsToImport:
    def __get__(self, obj, owner):
        raise ImportError("algorithms.broken is not written yet")


class BrokenConfig:
    settings = _FailsToImport()


def _entry(name: str, paradigms: tuple, config: str) -> catalogue.AlgorithmEntry:
    return catalogue.AlgorithmEntry(AlgorithmInfo(name, paradigms, config, "test", "test", paradigms[0]))


@pytest.fixture
def fake_algorithms(monkeypatch):
    here = __name__
    entries = {
        "fake_bc": _entry("fake_bc", ("offline",), f"{here}:FakeBCConfig"),
        "fake_hybrid": _entry("fake_hybrid", ("hybrid",), f"{here}:FakeBCConfig"),
        "broken": _entry("broken", ("online",), f"{here}:BrokenConfig"),
    }
    for name, entry in entries.items():
        monkeypatch.setitem(catalogue.CATALOGUE, name, entry)
    return entries


def test_config_keys_are_checked_against_the_algorithm(fake_algorithms):
    ok = spec_with(**{"phases.0.algorithm": "fake_bc", "phases.0.config": {"alpha": 1.0, "actor_lr": 1e-3}})
    assert parse_pipeline(ok).phases[0].config == {"alpha": 1.0, "actor_lr": 1e-3}

    bad = spec_with(**{
        "phases.0.algorithm": "fake_bc",
        "phases.0.config": {"aplha": 1.0, "env": "Walker2d-v5", "updates_per_iteration": 10, "zzz": 1},
    })
    message = problems_of(bad)
    assert "phases[0].config.aplha: unknown setting 'aplha' for fake_bc; did you mean 'alpha'?" in message
    assert "phases[0].config.env: 'env' cannot be set under config: the environment is set by the phase's `env:`" in message
    assert "phases[0].config.updates_per_iteration: 'updates_per_iteration' cannot be set under config" in message
    assert "phases[0].config.zzz: unknown setting 'zzz' for fake_bc" in message


def test_hybrid_phases_count_env_steps_and_need_a_dataset(fake_algorithms):
    data = spec_with(**{"phases.0.algorithm": "fake_hybrid", "phases.0.dataset": DELETE})
    message = problems_of(data)
    assert "phases[0].budget.updates: this is a hybrid fake_hybrid phase: its budget is counted in environment steps" in message
    assert "phases[0].dataset: required: this hybrid fake_hybrid phase learns from a dataset" in message
    ok = spec_with(**{"phases.0.algorithm": "fake_hybrid", "phases.0.budget": {"env_steps": 100}})
    assert parse_pipeline(ok).phases[0].budget_unit == "env_steps"


def test_config_class_is_loaded_only_when_config_is_given(fake_algorithms):
    data = spec_with(**{"phases.1.algorithm": "broken"})
    assert parse_pipeline(data).phases[1].algorithm == "broken"  # no config: nothing imported
    message = problems_of(spec_with(**{"phases.1.algorithm": "broken", "phases.1.config": {"lr": 1}}))
    assert "phases[1].config: cannot check the settings of broken" in message
    assert "algorithms.broken is not written yet" in message


@pytest.mark.parametrize(
    ("module", "phase", "typo", "suggestion"),
    [("algorithms.td3", 1, "polcy_noise", "policy_noise"), ("algorithms.td3_bc", 0, "aplha", "alpha")],
)
def test_real_algorithm_settings(module, phase, typo, suggestion):
    pytest.importorskip("algorithms.td3")
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not written yet")
    pytest.importorskip(module)
    algorithm = module.split(".")[-1]
    fields = catalogue.get_algorithm(algorithm).override_fields()
    assert suggestion in fields
    good = spec_with(**{f"phases.{phase}.config": {suggestion: fields[suggestion]}})
    assert parse_pipeline(good).phases[phase].config == {suggestion: fields[suggestion]}
    message = problems_of(spec_with(**{f"phases.{phase}.config": {typo: 1}}))
    assert f"phases[{phase}].config.{typo}: unknown setting {typo!r} for {algorithm}; did you mean {suggestion!r}?" in message


# --------------------------------------------------------------------------- files


def write(tmp_path, text: str, name: str = "pipe.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(path) -> str:
    with pytest.raises(SpecError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return message


def test_problems_in_a_file_carry_line_numbers(tmp_path):
    path = write(tmp_path, """\
        name: quickstart
        phases:
          - name: pretrain
            algorithm: td3_bc
            env: Hopper-v5
            dataset: mprl/hopper/random-v0
            budget: {updates: 5000}
          - name: finetune
            algorithm: td3
            env: Hopper-v5
            budget: {env_steps: ten}
        """)
    message = load_error(path)
    assert "phases[1].budget.env_steps: expected an integer, got 'ten' (line 11)" in message


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    path = write(tmp_path, "name: x\nphases:\n  - name: a\n    budget: {updates: 1\n")
    message = load_error(path)
    assert "invalid YAML at line 5, column 1" in message and "flow mapping at line 4" in message


def test_tabs_are_explained(tmp_path):
    path = write(tmp_path, "name: x\nphases:\n\t- name: a\n")
    assert "indentation must use spaces, not tabs" in load_error(path)


def test_duplicate_keys_are_reported(tmp_path):
    path = write(tmp_path, """\
        name: quickstart
        phases:
          - name: finetune
            algorithm: td3
            env: Hopper-v5
            budget: {env_steps: 100}
            budget: {env_steps: 200}
        """)
    assert "phases[0].budget: key 'budget' is written twice (lines 6 and 7); keep one" in load_error(path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "~\n"])
def test_empty_file(tmp_path, text):
    assert "the file is empty" in load_error(write(tmp_path, text))


@pytest.mark.parametrize(("text", "shown"), [("- a\n- b\n", "got a list [a, b]"), ("just text\n", "got 'just text'")])
def test_top_level_must_be_a_mapping(tmp_path, text, shown):
    message = load_error(write(tmp_path, text))
    assert "the top level must be a mapping with the keys name, phases" in message and shown in message


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.yaml"
    assert f"file not found (looked for {path})" in load_error(path)


def test_directory_is_not_a_file(tmp_path):
    assert "is a directory" in load_error(tmp_path)


def test_not_utf8(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    assert "not a UTF-8 text file" in load_error(path)


# --------------------------------------------------------------------------- typed settings (the algorithm base)


def test_settings_are_typed_and_ranged_before_anything_starts():
    message = problems_of(spec_with(**{"phases.1.config": {"actor_lr": "fast", "hidden": [0], "gamma": 1.5, "policy_delay": 0}}))
    assert "phases[1].config.actor_lr: actor_lr: input should be a valid number" in message
    assert "phases[1].config.hidden: hidden[0]: input should be greater than or equal to 1 (got 0)" in message
    assert "phases[1].config.gamma: gamma: input should be less than or equal to 1 (got 1.5); discount factor γ, default 0.99" in message
    assert "phases[1].config.policy_delay: policy_delay: input should be greater than or equal to 1" in message
    message = problems_of(spec_with(**{"phases.0.config": {"alpha": -1}}))
    assert "phases[0].config.alpha: alpha: input should be greater than 0 (got -1)" in message


def test_sweep_points_are_validated_like_config():
    message = problems_of(spec_with(**{"phases.1.sweep": [{"hidden": [0]}, {"hidden": [64, 64]}]}))
    assert "phases[1].sweep[0].hidden: hidden[0]: input should be greater than or equal to 1" in message
    assert "sweep[1]" not in message


def test_rllib_settings_the_learners_bypass_are_refused_with_the_setting_that_works():
    message = problems_of(spec_with(**{"phases.1.config": {"lr": 1e-3, "grad_clip": 10, "num_epochs": 2}}))
    assert "phases[1].config.lr: unknown setting 'lr' for td3: mprl's learners have one learning rate per network (actor_lr, critic_lr, ...)" in message
    assert "phases[1].config.grad_clip: unknown setting 'grad_clip' for td3: mprl's learners do not clip gradients" in message
    assert "phases[1].config.num_epochs" in message


def test_paradigm_only_settings_are_refused_elsewhere():
    message = problems_of(spec_with(**{"phases.0.config": {"random_steps": 100, "utd": 2}}))
    assert "phases[0].config.random_steps: 'random_steps' only applies to online and hybrid phases; this phase is offline: remove it" in message
    assert "phases[0].config.utd: 'utd' only applies to online and hybrid phases" in message


def test_a_phase_that_would_make_no_update_is_refused():
    fresh = spec_with(**{"phases.1.init_from": DELETE, "phases.1.budget": {"env_steps": 10_000}})
    message = problems_of(fresh)  # TD3's default learning_starts is 25,000
    assert "phases[1].config.learning_starts: learning_starts=25000 is not below the budget of 10,000 env steps: the phase would make no gradient update" in message
    ok = spec_with(**{"phases.1.init_from": DELETE, "phases.1.budget": {"env_steps": 10_000}, "phases.1.config": {"learning_starts": 1000, "random_steps": 1000}})
    assert parse_pipeline(ok).phases[1].config["learning_starts"] == 1000
    # A warm-started phase learns from its first fragment.
    assert parse_pipeline(spec_with(**{"phases.1.budget": {"env_steps": 10_000}})).phases[1].budget_value == 10_000


def test_multi_paradigm_algorithms_take_the_phase_paradigm():
    hybrid = spec_with(**{"phases.1.paradigm": "hybrid", "phases.1.dataset": "mprl/hopper/random-v0", "phases.1.config": {"replay": "mixed", "offline_ratio": 0.25}})
    phase = parse_pipeline(hybrid).phases[1]
    assert phase.resolved_paradigm == "hybrid" and phase.dataset_id == "mprl/hopper/random-v0"
    message = problems_of(spec_with(**{"phases.1.paradigm": "hybrid", "phases.1.dataset": "mprl/hopper/random-v0", "phases.1.config": {"replay": "balanced"}}))
    assert "replay 'balanced' is not available for this algorithm; use one of shared, mixed, online" in message
    message = problems_of(spec_with(**{"phases.1.config": {"offline_ratio": 0.3}}))
    assert "'offline_ratio' only applies to hybrid phases; this phase is online" in message
