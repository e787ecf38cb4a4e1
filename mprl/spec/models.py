"""The pipeline spec's pydantic models: datasets, budgets, phases, the pipeline."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from mprl import catalogue, search
from mprl.errors import MprlError
from mprl.spec.messages import (
    _did_you_mean,
    _explain,
    _get,
    _owner_loc,
    _problem,
    _quoted,
    _show,
)
from mprl.spec.values import (
    PhaseName,
    PipelineName,
    PositiveInt,
    Seed,
    _checkpoint_path,
    _config_problems,
    _dataset_id,
    _env_id,
    _env_problem,
    _env_variant_problems,
    _max_failures,
    _none_to_empty,
    _phase_problems,
    _quality_from_id,
    _ray_address,
    _seed_list,
    _storage_path,
)
from mprl.spec.vocabulary import (
    _DATASET_ID_RE,
    _PHASE_NAME_RE,
    _UNIT_WORDS,
    BUDGET_UNITS,
    DATASET_QUALITIES,
    PARADIGM_UNITS,
    Metric,
    Paradigm,
    Quality,
)
from mprl.storage import is_uri

# --------------------------------------------------------------------------- models


class _SpecModel(BaseModel):
    """Base of the spec models: unknown keys are errors (a typo must never be ignored), and
    structure and meaning are checked together so that every problem is reported at once."""

    model_config = ConfigDict(extra="forbid")

    #: How a mapping of this kind is written, used in "expected a mapping ..." messages.
    yaml_shape: ClassVar[str] = ""
    #: Appended to "unknown field" messages that have no did-you-mean.
    extra_hint: ClassVar[str] = ""

    @model_validator(mode="wrap")
    @classmethod
    def _validate_structure_and_meaning(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, cls):
            return handler(data)
        data = cls._normalize(data)
        errors: list[dict] = []
        model = None
        try:
            model = handler(data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                errors.append({"type": _problem(_explain(cls, error)), "loc": _owner_loc(error), "input": error.get("input")})
        if isinstance(data, Mapping):
            for loc, message, value in cls._check(data):
                errors.append({"type": _problem(message), "loc": tuple(loc), "input": value})
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        model._complete()
        return model

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        """Shorthand forms → the full mapping (e.g. a dataset id string → {id: ...})."""
        return data

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        """Meaning checks on the raw input: (relative loc, message, bad value) per problem.
        They must tolerate malformed fields (those are reported by the structure check)."""
        return []

    def _complete(self) -> None:
        """Fill defaults that depend on other fields (runs only on a valid model)."""


class DatasetBuild(_SpecModel):
    """How mprl builds the dataset when the id is not in the local Minari folder.

    The official D4RL/Minari datasets cannot be downloaded on the development machines,
    so mprl trains and records its own random/medium/medium-replay/expert datasets.
    """

    yaml_shape: ClassVar[str] = "such as {quality: medium, size: 1000000}"

    quality: Optional[Quality] = Field(
        None, description="random, medium, medium-replay or expert (default: read from the dataset id)"
    )
    size: PositiveInt = Field(
        1_000_000, description="transitions to record; D4RL's MuJoCo datasets hold 1M (medium-replay: up to 1M)"
    )
    budget: Optional[PositiveInt] = Field(
        None, description="environment steps to train the behaviour agent; null = the builder's default for the quality"
    )
    seed: Seed = Field(0, description="seed of the behaviour agent and the recording")
    target_score: Optional[float] = Field(
        None, description="the snapshot's target normalised score (null: medium 1/3 of the best snapshot's, expert D4RL's 100)")
    target_return: Optional[float] = Field(None, description="the target as an episode return instead")
    strict: bool = Field(False, description="fail the build (nothing written) when the snapshot misses its target")

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        if data.get("target_score") is not None and data.get("target_return") is not None:
            return [(("target_return",), "give target_score or target_return, not both", data.get("target_return"))]
        if data.get("quality") == "random" and (data.get("target_score") is not None or data.get("target_return") is not None):
            return [(("quality",), "a target applies to medium, medium-replay and expert builds (random trains no agent)", "random")]
        return []


class DatasetTake(_SpecModel):
    """Which of a phase's transitions a `dataset: {from: ...}` keeps: `all`, `{last: N}` (the N
    newest transitions) or `{top: 0.25}` (the quarter of episodes with the highest return)."""

    yaml_shape: ClassVar[str] = "all, {last: N} or {top: FRACTION}"

    rule: Literal["all", "last", "top"] = Field("all", description="all, the last N transitions, or the top fraction of episodes by return")
    n: Optional[PositiveInt] = Field(None, description="last: how many transitions (the newest)")
    fraction: Optional[Annotated[float, Field(gt=0, le=1)]] = Field(None, description="top: the fraction of episodes kept, by return")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if data is None or data == "all":
            return {"rule": "all"}
        if isinstance(data, str):
            raise _problem(f"{data!r} is not a selection; write all, {{last: N}} (the N newest transitions) or {{top: 0.25}} (the best quarter of episodes by return)")
        if isinstance(data, Mapping) and "rule" not in data:
            if "last" in data:
                return {"rule": "last", "n": data["last"], **{k: v for k, v in data.items() if k != "last"}}
            if "top" in data:
                return {"rule": "top", "fraction": data["top"], **{k: v for k, v in data.items() if k != "top"}}
        return data

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        rule = data.get("rule")
        if rule == "last" and data.get("n") is None:
            return [(("last",), "give how many transitions: {last: 5000}", None)]
        if rule == "top" and data.get("fraction") is None:
            return [(("top",), "give the fraction of episodes: {top: 0.25}", None)]
        return []


class DatasetRef(_SpecModel):
    """A Minari dataset, by id; written in YAML as the id alone or as {id, build}; or an earlier
    phase's own experience as {from: PHASE (or [PHASE, ...]), take, held_out}, built once when
    that phase has run (mprl.datasets.from_phase)."""

    yaml_shape: ClassVar[str] = "{id: mprl/hopper/medium-v0, build: {...}} (or just the id string), or {from: PHASE, take: all}"

    id: Optional[Annotated[str, BeforeValidator(_dataset_id)]] = Field(
        None, description="a Minari dataset id '(namespace/)name-vN', e.g. 'mprl/hopper/medium-v0' (with `from:` it is assigned when built)"
    )
    build: Optional[DatasetBuild] = Field(None, description="build the dataset if it is missing (null: never build)")
    from_phases: Optional[list[PhaseName]] = Field(
        None, description="written `from: PHASE` or `from: [PHASE, ...]`: the transitions these earlier online/hybrid phases collected (their selected checkpoint's replay)"
    )
    take: DatasetTake = Field(default_factory=DatasetTake, description="with from: all, {last: N} or {top: FRACTION} of episodes by return")
    held_out: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="with from: fraction of the episodes kept out of the dataset (a dataset of their own) for offline validation"
    )
    seed: Seed = Field(0, description="with from: seed of the held-out draw")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"id": data}
        if isinstance(data, Mapping) and "from" in data:
            data = {("from_phases" if k == "from" else k): v for k, v in data.items()}
            if isinstance(data["from_phases"], str):
                data["from_phases"] = [data["from_phases"]]
            return data
        if isinstance(data, Mapping) and isinstance(data.get("build"), bool):
            data = dict(data)
            data["build"] = {} if data["build"] else None  # `build: true` = build with defaults
            return data
        if not isinstance(data, Mapping):
            raise _problem(
                f"expected a Minari dataset id such as 'mprl/hopper/medium-v0' or a mapping {cls.yaml_shape}, "
                f"got {_show(data)}"
            )
        return data

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        build, dataset_id = data.get("build"), data.get("id")
        if data.get("from_phases") is not None:
            if dataset_id is not None or build is not None:
                return [((), "give a dataset id (with build) or `from: PHASE`, not both: a dataset from a phase gets its id when it is built", dict(data))]
            if not data["from_phases"]:
                return [(("from",), "name at least one earlier phase: from: PHASE", data["from_phases"])]
            return []
        if dataset_id is None:
            return [(("id",), "required: a Minari dataset id such as 'mprl/hopper/medium-v0', or `from: PHASE` for an earlier phase's experience", None)]
        take = data.get("take")
        default = {"take": take in (None, "all") or (isinstance(take, Mapping) and take.get("rule", "all") == "all" and not ({"last", "top"} & set(take))),
                   "held_out": data.get("held_out") in (None, 0), "seed": data.get("seed") in (None, 0)}
        extra = [k for k in ("take", "held_out", "seed") if not default[k]]  # to_dict writes the defaults
        if extra:
            return [((extra[0],), f"`{extra[0]}` selects from a phase's experience; it needs `from: PHASE` (a dataset by id is used whole)", data[extra[0]])]
        if isinstance(build, Mapping) and build.get("quality") is None and isinstance(dataset_id, str):
            if _DATASET_ID_RE.fullmatch(dataset_id) and _quality_from_id(dataset_id) is None:
                return [(
                    ("build", "quality"),
                    f"required: the dataset id {dataset_id!r} does not name a quality; "
                    f"choose one of {_quoted(DATASET_QUALITIES)}",
                    None,
                )]
        return []

    def _complete(self) -> None:
        if self.build is not None and self.build.quality is None and self.id is not None:
            self.build.quality = _quality_from_id(self.id)


class Budget(_SpecModel):
    """How long a phase trains, in its paradigm's unit.

    Offline phases count gradient updates and online/hybrid phases count environment
    steps: the two are not interchangeable (an online update-to-data ratio changes how
    many updates a step buys), so the unit is explicit and checked against the paradigm.
    """

    yaml_shape: ClassVar[str] = "such as {updates: 1000000} (offline) or {env_steps: 300000} (online, hybrid)"

    updates: Optional[PositiveInt] = Field(None, description="gradient updates (offline phases)")
    env_steps: Optional[PositiveInt] = Field(None, description="environment steps (online and hybrid phases)")

    @property
    def unit(self) -> str:
        """'updates' or 'env_steps', whichever is set."""
        return "updates" if self.updates is not None else "env_steps"

    @property
    def value(self) -> int:
        return self.updates if self.updates is not None else self.env_steps  # type: ignore[return-value]


class InitFrom(_SpecModel):
    """Where a phase's networks come from: an earlier phase's selected checkpoint, a checkpoint
    on disk, or a validated choice between phases. Written as the phase name alone, as
    {checkpoint: PATH}, or as {best_of: [PHASE, ...], keep: PAUSED_PHASE, validation: online,
    episodes: K}: every trial's final checkpoint of the `best_of` phases (offline RL on the paused
    phase's data, over algorithms, dataset selections and seeds) and the `keep` phase's selected
    checkpoint (the paused online policy) are scored and the best one starts this phase
    (offline RL as an online subroutine, Su, Luo, Zhang 2025). {phase: PHASE, top_k: K, as: ensemble}
    starts an ensemble algorithm (off2on) from the best checkpoints of the phase's K best trials,
    member k from the k-th (Lee et al. 2022)."""

    yaml_shape: ClassVar[str] = ("{checkpoint: /path/to/checkpoint} (or an earlier phase's name), {best_of: [PHASE, ...], keep: PHASE, validation: online}, "
                                 "or {phase: PHASE, top_k: K, as: ensemble}")

    phase: Optional[PhaseName] = Field(None, description="the name of an earlier phase")
    checkpoint: Optional[Annotated[str, BeforeValidator(_checkpoint_path)]] = Field(
        None, description="a checkpoint folder or URI"
    )
    best_of: Optional[list[PhaseName]] = Field(
        None, description="candidate phases: every trial's final checkpoint of each is a candidate"
    )
    keep: Optional[PhaseName] = Field(
        None, description="best_of: the paused online phase; its selected checkpoint stays a candidate (keeping it is always an option)"
    )
    validation: Literal["online", "offline", "none"] = Field(
        "online", description="best_of: online (K episodes per candidate, charged to this phase's budget), offline (fitted Q evaluation "
        "on the held-out episodes of the candidates' dataset), or none (the first candidate phase's first trial, unvalidated)"
    )
    episodes: PositiveInt = Field(5, description="best_of, online validation: episodes per candidate")
    charge: bool = Field(True, description="best_of, online validation: subtract the validation's env steps from this phase's env-step budget")
    fqe_updates: PositiveInt = Field(2000, description="best_of, offline validation: gradient updates of each candidate's fitted Q evaluation")
    seed: Seed = Field(20_000, description="best_of: seed of the validation episodes and of the fitted Q networks")
    top_k: Optional[PositiveInt] = Field(
        None, description="with `as: ensemble`: the K best trials of `phase` (each trial's best checkpoint), one per ensemble member"
    )
    ensemble: bool = Field(
        False, description="`as: ensemble`: start an ensemble algorithm (off2on) from top_k checkpoints of `phase` at once, member k from the k-th"
    )

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"phase": data}
        if not isinstance(data, Mapping):
            raise _problem(
                f"expected null, the name of an earlier phase or a mapping {cls.yaml_shape}, got {_show(data)}"
            )
        if "as" in data:  # `as` is a Python keyword: the field is `ensemble`
            how = data["as"]
            if how != "ensemble":
                raise _problem(f"init_from.as: {_show(how)} is not allowed; the only value is `as: ensemble` (with top_k: K)")
            data = {**{k: v for k, v in data.items() if k != "as"}, "ensemble": True}
        return data

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        known = {"phase", "checkpoint", *cls.model_fields}
        given = [k for k in ("phase", "checkpoint", "best_of") if data.get(k) is not None]
        if len(given) != 1 and not (set(data) - known):
            message = (
                f"give one of an earlier phase's name, a checkpoint or best_of, not {' and '.join(given)}" if given
                else "give an earlier phase's name, {checkpoint: PATH} or {best_of: [PHASE, ...]} (or null to start from fresh networks)"
            )
            return [((), message, dict(data))]
        if data.get("ensemble") and (data.get("phase") is None or data.get("top_k") is None):
            return [((), "as: ensemble takes the K best trials of an earlier phase: write {phase: PHASE, top_k: K, as: ensemble}", dict(data))]
        if data.get("top_k") is not None and not data.get("ensemble"):
            return [(("top_k",), "init_from.top_k starts an ensemble: add `as: ensemble` (to branch from the K best checkpoints "
                     "instead, write `select: {top_k: K}` on the earlier phase)", data["top_k"])]
        choice = ("keep", "validation", "episodes", "charge", "fqe_updates", "seed")
        defaults = {"validation": "online", "episodes": 5, "charge": True, "fqe_updates": 2000, "seed": 20_000}
        written = [k for k in choice if data.get(k) is not None and data.get(k) != defaults.get(k)]  # to_dict writes the defaults
        if data.get("best_of") is None and written:
            return [((written[0],), f"`{written[0]}` belongs to a validated choice: write {{best_of: [PHASE, ...], {written[0]}: ...}}", data[written[0]])]
        if data.get("best_of") is not None:
            best_of = data["best_of"]
            if isinstance(best_of, list) and not best_of:
                return [(("best_of",), "name at least one candidate phase: best_of: [iql, cql]", best_of)]
            if isinstance(best_of, list) and data.get("keep") in best_of:
                return [(("keep",), f"{data['keep']!r} is already in best_of; `keep` names the paused online phase, whose selected checkpoint is kept as a candidate", data["keep"])]
            if data.get("validation") == "none" and data.get("keep") is not None:
                return [(("keep",), "without validation nothing can prefer the paused policy: remove `keep`, or write validation: online or offline", data["keep"])]
        return []


class Evaluation(_SpecModel):
    """Periodic evaluation episodes: the source of the learning curves and of the metric
    that selects the checkpoint handed to the next phase."""

    yaml_shape: ClassVar[str] = "such as {interval: 1000, episodes: 10}"

    interval: Optional[PositiveInt] = Field(
        None, description="evaluate every this many budget units (default: a tenth of the budget, rounded up)"
    )
    episodes: PositiveInt = Field(10, description="episodes per evaluation (D4RL/CORL report 10)")
    seed: Seed = Field(10_000, description="seed of the evaluation environments, apart from training seeds")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        return _none_to_empty(data)


class EarlyStopping(_SpecModel):
    """A Tune trial scheduler that stops bad trials early, on the phase's own axis (env steps
    online and hybrid, gradient updates offline). Written as `asha`, `median` or a mapping."""

    yaml_shape: ClassVar[str] = "such as {type: asha, grace_period: 2000, reduction_factor: 3} (or just asha / median)"

    type: Literal["asha", "median"] = Field(description="asha (asynchronous successive halving) or median (median stopping rule)")
    grace_period: Optional[PositiveInt] = Field(
        None, description="budget units every trial runs before it can be stopped (default: one evaluation interval)"
    )
    reduction_factor: Annotated[float, Field(gt=1)] = Field(3.0, description="asha: 1/reduction_factor of the trials go on at each rung")
    min_samples_required: PositiveInt = Field(3, description="median: trials that must have reported before one is stopped")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        return {"type": data} if isinstance(data, str) else data


class RerunBest(_SpecModel):
    """After a search, run its best configuration again on new seeds for its CI across seeds."""

    yaml_shape: ClassVar[str] = "such as {seeds: 5} or {seeds: [100, 101, 102]}"

    seeds: Annotated[list[Seed], BeforeValidator(_seed_list)] = Field(
        default_factory=list, description="seeds of the re-run: a list, or a count N (the N seeds after the search's largest)"
    )
    count: Optional[PositiveInt] = Field(None, description="written as `seeds: N`: how many seeds (filled in as a list)")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("seeds"), int) and not isinstance(data.get("seeds"), bool):
            return {**{k: v for k, v in data.items() if k != "seeds"}, "count": data["seeds"]}
        return data

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        if bool(data.get("seeds")) == (data.get("count") is not None):
            return [(("seeds",), "give the re-run's seeds as a list or as a count, e.g. {seeds: 5}", data.get("seeds"))]
        return []


class TuneSettings(_SpecModel):
    """How the phase runs as a Ray Tune experiment: one trial per seed, and the metric
    that ranks trials and checkpoints."""

    yaml_shape: ClassVar[str] = "such as {seeds: [0, 1, 2], metric: normalized_score, mode: max}"

    seeds: Annotated[list[Seed], BeforeValidator(_seed_list)] = Field(
        default_factory=lambda: [0], min_length=1, description="one trial per seed (a non-empty list of integers)"
    )
    metric: Metric = Field("normalized_score", description="what ranks trials and checkpoints")
    mode: Literal["max", "min"] = Field("max", description="whether the metric is maximised or minimised")
    max_concurrent_trials: Optional[PositiveInt] = Field(None, description="null = as many as the cluster fits")
    max_failures: Annotated[int, BeforeValidator(_max_failures)] = Field(
        1, description="retries of a failed trial from its last checkpoint (Tune FailureConfig; -1 = unlimited)"
    )
    checkpoint_num_to_keep: Optional[PositiveInt] = Field(None, description="checkpoints kept per trial; null = all")
    num_samples: PositiveInt = Field(1, description="a search (`sweep:` of distributions): points sampled, each run once per seed")
    search: Literal["random", "optuna", "hyperopt"] = Field(
        "random", description="search algorithm: random (Tune's random/grid variant generator), optuna or hyperopt (pip install 'mprl[search]')"
    )
    scheduler: Optional[EarlyStopping] = Field(None, description="early stopping of bad trials: asha or median (null: none)")
    rerun_best: Optional[RerunBest] = Field(None, description="a search: re-run the best configuration on new seeds, {seeds: N}")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        return _none_to_empty(data)

    def _complete(self) -> None:
        if self.rerun_best is not None and self.rerun_best.count is not None:  # {seeds: N}
            start = max(self.seeds) + 1
            self.rerun_best.seeds, self.rerun_best.count = list(range(start, start + self.rerun_best.count)), None

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        seeds = data.get("seeds")
        if isinstance(seeds, list):
            seen: set = set()
            for i, seed in enumerate(seeds):
                if isinstance(seed, int) and not isinstance(seed, bool):
                    if seed in seen:
                        return [(("seeds", i), f"seed {seed} appears twice; each seed is one trial", seed)]
                    seen.add(seed)
        return []


class RayOptions(_SpecModel):
    """Which Ray cluster runs the pipeline (null address: an embedded local Ray)."""

    yaml_shape: ClassVar[str] = "such as {address: auto}"

    address: Optional[Annotated[str, BeforeValidator(_ray_address)]] = Field(
        None, description="null, 'auto', 'ray://HOST:10001' or 'HOST:6379'"
    )
    num_cpus: Optional[PositiveInt] = Field(None, description="CPUs of an embedded local Ray (null: all)")
    check_resources: bool = Field(
        True, description="refuse a phase whose trial asks for more GPUs or CPUs than the cluster has now "
        "(false: the cluster autoscales and will add them)")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        return _none_to_empty(data)



class Selection(_SpecModel):
    """Which checkpoints of a phase seed the next one; each chosen checkpoint starts a branch.

    Written as `best`, `last`, `{top_k: 3}` or `{at: [0.25, 0.5, 1.0]}` (fractions of the
    budget, or absolute budget units when above 1): the transition points.
    """

    yaml_shape: ClassVar[str] = "best, last, {top_k: K} or {at: [0.25, 0.5, 1.0]}"

    rule: Literal["best", "last", "top_k", "at"] = Field("best", description="best by the metric, last, K best, or at transition points")
    k: Optional[PositiveInt] = Field(None, description="how many checkpoints top_k hands on")
    at: Optional[list[Annotated[float, Field(gt=0)]]] = Field(
        None, description="transition points: fractions of the budget (≤ 1) or budget units (> 1)"
    )

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data not in ("best", "last"):
                close = _did_you_mean(data, ["best", "last", "top_k", "at"])
                hint = f"; did you mean {close!r}?" if close in ("best", "last") else ""
                raise _problem(f"{data!r} is not allowed; choose 'best', 'last', {{top_k: K}} or {{at: [0.25, 0.5, 1.0]}}{hint}")
            return {"rule": data}
        if isinstance(data, Mapping) and "rule" not in data:
            if "top_k" in data:
                return {"rule": "top_k", "k": data["top_k"], **{k: v for k, v in data.items() if k != "top_k"}}
            if "at" in data:
                return {"rule": "at", **data}
        return data

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        rule = data.get("rule")
        if rule == "top_k" and data.get("k") is None:
            return [(("k",), "top_k needs how many checkpoints: write {top_k: 3}", None)]
        if rule == "at" and not data.get("at"):
            return [(("at",), "give the transition points, e.g. {at: [0.25, 0.5, 1.0]}", data.get("at"))]
        if rule in ("best", "last") and (data.get("k") is not None or data.get("at") is not None):
            return [((), f"`{rule}` takes no k or at; write {{top_k: K}} or {{at: [...]}} instead", dict(data))]
        return []

    def points(self, budget: int) -> list[int]:
        """The transition points in budget units."""
        return [round(p * budget) if p <= 1 else round(p) for p in (self.at or [])]

    def label(self, budget: int, unit: str, i: int = 0) -> str:
        if self.rule == "at":
            p = (self.at or [])[i]
            return f"at {p:.0%}" if p <= 1 else f"at {round(p):,} {unit.replace('_', ' ')}"
        return self.rule if self.rule != "top_k" else f"top {i + 1}/{self.k}"


class StopRule(_SpecModel):
    """Ends a trial before its budget: a score threshold, or a plateau of evaluations."""

    yaml_shape: ClassVar[str] = "such as {score: 3000} or {plateau: 5, min_delta: 1.0}"

    score: Optional[float] = Field(None, description="stop once the metric reaches this value")
    plateau: Optional[PositiveInt] = Field(None, description="stop after this many evaluations without improvement")
    min_delta: NonNegativeFloat = Field(0.0, description="how much better counts as an improvement")
    metric: Optional[Metric] = Field(None, description="the metric watched (default: the phase's tune.metric)")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        return _none_to_empty(data)


class Videos(_SpecModel):
    """Behaviour videos of checkpoints, rendered in background Ray tasks (never in the learner)."""

    yaml_shape: ClassVar[str] = "such as {every: 5, steps: 1000}"

    every: NonNegativeInt = Field(0, description="a video every this many checkpoints of each trial (0: none)")
    selected: bool = Field(True, description="a video of each checkpoint handed to the next phase")
    steps: PositiveInt = Field(1000, description="environment steps per video")
    num_cpus: NonNegativeFloat = Field(0.0, description="CPUs a video task reserves (0: shares the trials' CPUs)")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        return _none_to_empty(data)


def _switch(data: Any) -> Any:
    """`true` → the integration with its defaults; `false` / empty → off."""
    return {} if data is True else None if data is False else data


class MLflowTracking(_SpecModel):
    """Tune's MLflowLoggerCallback: one MLflow run per trial, tagged with mprl's lineage ids."""

    yaml_shape: ClassVar[str] = "such as {tracking_uri: http://mlflow:5000, experiment_name: opt}, or true"

    tracking_uri: str | None = Field(None, description="the MLflow tracking URI; default: MLFLOW_TRACKING_URI, else sqlite:///<storage_path>/mlflow.db")
    experiment_name: str | None = Field(None, description="the MLflow experiment; default: the pipeline's name")
    tags: dict[str, str] = Field(default_factory=dict, description="extra tags on every run (mprl's own tags are mprl.*)")
    save_artifact: bool = Field(False, description="also upload each trial's folder (checkpoints included) as run artifacts")


class WandbTracking(_SpecModel):
    """Tune's WandbLoggerCallback: one W&B run per trial, its config carrying mprl's lineage ids."""

    yaml_shape: ClassVar[str] = "such as {project: mprl, mode: offline}, or true"

    project: str | None = Field(None, description="the W&B project; default: the pipeline's name")
    mode: Literal["offline", "online", "disabled"] = Field(
        "offline", description="offline: files under <run>/wandb (`wandb sync` later; no network, no key); online: needs WANDB_API_KEY or `wandb login`")
    entity: str | None = Field(None, description="the W&B team or user (online mode)")
    group: str | None = Field(None, description="the run group; default: the mprl run id")
    tags: list[str] = Field(default_factory=list, description="extra tags (the run id and the phase are always tags)")
    dir: str | None = Field(None, description="where offline runs go; default: the run folder (<run>/wandb/offline-run-…)")


class Tracking(_SpecModel):
    """Experiment trackers fed by Tune's own logger callbacks, each run tagged with the mprl run id,
    phase, trial id and checkpoint ids so that a run found there leads back to mprl."""

    yaml_shape: ClassVar[str] = "such as {tensorboard: true, mlflow: {experiment_name: opt}, wandb: {project: mprl}}"

    tensorboard: bool = Field(True, description="TensorBoard event files in every trial folder (Tune's TBXLoggerCallback); false writes none")
    mlflow: Annotated[MLflowTracking | None, BeforeValidator(_switch)] = Field(None, description="MLflow runs (needs mprl[tracking])")
    wandb: Annotated[WandbTracking | None, BeforeValidator(_switch)] = Field(None, description="W&B runs (needs mprl[tracking])")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        return _none_to_empty(data)


ConfigOverrides = Annotated[dict[str, Any], BeforeValidator(_none_to_empty)]


class RegimeSettings(_SpecModel):
    """The regime diagnosis at the start of a warm-started online or hybrid phase (Li, Ni, Sun,
    Bacon; mprl.regime): J(π0) of the checkpoint it starts from over `episodes` evaluation
    episodes against J(π_D), the mean episode return of its data, recorded in the lineage. With
    `auto` the phase's trials also get the recommended family's interventions; `pi0_centric` /
    `d_centric` apply that family whatever the diagnosis says. Written as the mode alone or
    {mode, episodes, margin, alpha, seed, charge}."""

    yaml_shape: ClassVar[str] = "diagnose, off, auto, pi0_centric or d_centric, or {mode: auto, episodes: 5}"

    mode: Literal["diagnose", "off", "auto", "pi0_centric", "d_centric"] = Field(
        "diagnose", description="diagnose (record the regime; the default), off (no diagnosis, no evaluation episodes), auto (diagnose and "
        "apply the recommended family's settings), pi0_centric or d_centric (diagnose and apply that family)")
    episodes: int = Field(5, ge=2, description="evaluation episodes of π0 (at least 2, for a variance)")
    margin: NonNegativeFloat = Field(0.05, description="δ of the Welch test, in normalised-score units (the paper's 0.05)")
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="level of the one-sided Welch t-tests")
    seed: Seed = Field(10_000, description="episode i of π0's evaluation is seeded seed + i")
    charge: bool = Field(False, description="subtract the diagnosis's env steps from the phase's env-step budget (default: recorded, not charged, "
                         "as the periodic evaluation episodes)")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, bool):  # YAML 1.1 reads `regime: off` as false and `on` as true
            return {"mode": "diagnose" if data else "off"}
        if isinstance(data, str):
            return {"mode": data}
        if not isinstance(data, Mapping):
            raise _problem(f"expected one of diagnose, off, auto, pi0_centric, d_centric or a mapping {cls.yaml_shape}, got {_show(data)}")
        return data

    @property
    def applies(self) -> bool:
        """Whether the phase's trials get a family's settings (auto or a family written)."""
        return self.mode in ("auto", "pi0_centric", "d_centric")


class Resources(_SpecModel):
    """What each trial of the phase asks the Ray cluster for beyond its CPUs: today the GPUs of
    its learner (RLlib's `config.learners(num_gpus_per_learner=...)`; mprl's learners keep
    their data and networks on that device). Checked against `ray.cluster_resources()` before
    Tune starts, so a request the cluster cannot meet fails at once instead of waiting forever."""

    yaml_shape: ClassVar[str] = "{num_gpus_per_learner: 1}"

    num_gpus_per_learner: NonNegativeFloat = Field(
        0.0, description="GPUs of each trial's learner (0: CPU; a fraction such as 0.5 lets trials share one GPU)")


class Phase(_SpecModel):
    """One complete training configuration: algorithm, environment, dataset, budget and
    where its networks start from. A phase runs as one Ray Tune experiment."""

    yaml_shape: ClassVar[str] = "with name, algorithm, env, budget, ..."
    extra_hint: ClassVar[str] = ". Algorithm settings go under `config:`"

    name: PhaseName = Field(description="a unique name for the phase ([A-Za-z0-9_-]+), used by init_from and in folder names")
    algorithm: str = Field(description="an algorithm from the catalogue (mprl.catalogue.algorithm_names())")
    paradigm: Optional[Paradigm] = Field(
        None, description="offline, online or hybrid; defaults to the algorithm's and must equal it"
    )
    env: Any = Field(
        description="a registered Gymnasium environment id such as 'Hopper-v5', a named deployment context such as "
        "'mprl/Hopper-real-v0' (`mprl envs`), or {id, dynamics, observation_noise, action_delay}; "
        "recorded as one id (a mapping becomes its canonical id)"
    )
    dataset: Optional[DatasetRef] = Field(
        None, description="a Minari dataset id or {id, build}; required iff the algorithm learns from a dataset"
    )
    budget: Budget = Field(
        description="how long the phase trains: {updates: N} for offline algorithms, {env_steps: N} for online and hybrid ones"
    )
    init_from: Optional[InitFrom] = Field(
        None, description="null (fresh networks), an earlier phase's name, or {checkpoint: PATH}"
    )
    evaluation: Evaluation = Field(default_factory=Evaluation, description="periodic evaluation episodes")
    config: ConfigOverrides = Field(default_factory=dict, description="overrides of the algorithm's settings")
    tune: TuneSettings = Field(default_factory=TuneSettings, description="Ray Tune settings: seeds, metric, retries")
    sweep: Union[list[dict[str, Any]], dict[str, Any]] = Field(
        default_factory=list,
        description="a list of sweep points (each a mapping of algorithm settings plus an optional `label`; one "
        "trial per point and seed, a table per point), or a search space: a mapping of settings to distributions "
        "such as {uniform: [lo, hi]} (mprl.search; tune.num_samples, tune.search, tune.scheduler)",
    )
    select: Selection = Field(
        default_factory=Selection, description="the checkpoints handed to the next phase: best, last, {top_k: K} or {at: [...]}"
    )
    stop: StopRule = Field(default_factory=StopRule, description="ending a trial before its budget: score threshold or plateau")
    resources: Resources = Field(
        default_factory=Resources, description="what each trial asks the cluster for: {num_gpus_per_learner: N} (checked before the phase starts)")
    regime: RegimeSettings = Field(
        default_factory=RegimeSettings, description="warm-started online/hybrid phases: the regime diagnosis at the start (diagnose, "
        "off) and `auto`: apply the recommended intervention family (mprl.regime)")

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        problems: list[tuple[tuple, str, Any]] = []
        algorithm = data.get("algorithm")
        entry = catalogue.CATALOGUE.get(algorithm) if isinstance(algorithm, str) else None
        if isinstance(algorithm, str) and entry is None:
            names = catalogue.algorithm_names()
            message = f"unknown algorithm {algorithm!r}"
            close = _did_you_mean(algorithm, names)
            if close:
                message += f"; did you mean {close!r}?"
            problems.append((("algorithm",), f"{message} Known algorithms: {', '.join(names)}", algorithm))

        paradigm = data.get("paradigm")
        paradigm = paradigm if isinstance(paradigm, str) and paradigm in PARADIGM_UNITS else None
        if entry is not None and paradigm is not None and paradigm not in entry.paradigms:
            problems.append((
                ("paradigm",),
                f"{entry.name} does not run {paradigm} phases; it supports {', '.join(entry.paradigms)}: "
                f"write one of those or remove `paradigm:` (default {entry.paradigm!r})",
                paradigm,
            ))
            paradigm = None
        resolved = (paradigm or entry.paradigm) if entry is not None else paradigm

        env = data.get("env")
        if isinstance(env, str):
            message = _env_problem(env)
            if message:
                problems.append((("env",), message, env))
        elif isinstance(env, Mapping):
            problems += _env_variant_problems(env)
        else:
            problems.append((("env",), "must be a Gymnasium id such as 'Hopper-v5' or a mapping {id, dynamics, observation_noise, action_delay}", env))

        if entry is not None:
            dataset = data.get("dataset")
            if entry.needs_dataset(resolved) and dataset is None:
                problems.append((
                    ("dataset",),
                    f"required: this {resolved} {entry.name} phase learns from a dataset; "
                    f"give a Minari dataset id such as 'mprl/hopper/medium-v0', or "
                    f"{{id: ..., build: {{quality: medium}}}} to build it if it is missing",
                    None,
                ))
            elif not entry.needs_dataset(resolved) and dataset is not None:
                hybrid = " (or write `paradigm: hybrid` to learn from both)" if "hybrid" in entry.paradigms else ""
                problems.append((
                    ("dataset",),
                    f"{_article(resolved)} {entry.name} phase takes no dataset; remove `dataset:`{hybrid}",
                    dataset,
                ))

        budget = data.get("budget")
        if isinstance(budget, Mapping):
            given = [unit for unit in BUDGET_UNITS if budget.get(unit) is not None]
            want = PARADIGM_UNITS.get(resolved) if resolved else None
            which = f"; this {resolved} phase uses `budget: {{{want}: N}}`" if want else ""
            if len(given) == 2:
                problems.append((
                    ("budget",),
                    f"give exactly one of updates (offline) or env_steps (online, hybrid), not both{which}",
                    dict(budget),
                ))
            elif not given and not set(budget) - set(BUDGET_UNITS):
                problems.append((
                    ("budget",),
                    f"give exactly one of updates (offline) or env_steps (online, hybrid){which}",
                    dict(budget),
                ))
            elif len(given) == 1 and want is not None and given[0] != want:
                unit = given[0]
                who = f"this is {_article(resolved)} {entry.name} phase" if entry else f"this is {_article(resolved)} phase"
                problems.append((
                    ("budget", unit),
                    f"{who}: its budget is counted in {_UNIT_WORDS[want]} ({want}), not {_UNIT_WORDS[unit]}; "
                    f"write `budget: {{{want}: N}}` instead of `{unit}: {_show(budget[unit])}`",
                    budget[unit],
                ))

        problems += _selection_problems(data)
        config = data.get("config")
        config = config if isinstance(config, Mapping) else {}
        warm = data.get("init_from") is not None
        if entry is not None:
            unit = PARADIGM_UNITS[resolved]
            config_problems = _config_problems(entry, config, unit, resolved)
            problems += config_problems
            if not config_problems:
                problems += _phase_problems(entry, config, resolved, budget, warm)
            problems += _regime_problems(entry, data.get("regime"), resolved, warm)
            problems += _ensemble_problems(entry, config, data.get("init_from"))
        sweep = data.get("sweep")
        tune = data.get("tune") if isinstance(data.get("tune"), Mapping) else {}
        problems += search.tune_problems(tune, isinstance(sweep, Mapping))
        if entry is not None and isinstance(sweep, Mapping):  # a search space (mprl.search)
            unit = PARADIGM_UNITS[resolved]
            problems += search.space_problems(
                entry, sweep, config, tune,
                check_config=lambda settings: _config_problems(entry, settings, unit, resolved),
                check_phase=lambda settings: _phase_problems(entry, settings, resolved, budget, warm),
                init_from=data.get("init_from"),
            )
        if entry is not None and isinstance(sweep, list):
            unit = PARADIGM_UNITS[resolved]
            labels = []
            for i, point in enumerate(sweep):
                if not isinstance(point, Mapping):
                    continue  # pydantic reports the type
                settings = {k: v for k, v in point.items() if k != "label"}
                if not settings:
                    problems.append((("sweep", i), "a sweep point needs at least one setting besides `label`", dict(point)))
                point_problems = _config_problems(entry, settings, unit, resolved)
                problems += [(("sweep", i, *loc[1:]), msg, value) for loc, msg, value in point_problems]
                if not point_problems:
                    problems += [(("sweep", i, *loc[1:]), msg, value) for loc, msg, value in _phase_problems(entry, {**config, **settings}, resolved, budget, warm)]
                labels.append(sweep_label(point))
            for i, label in enumerate(labels):
                if labels.index(label) != i:
                    problems.append((("sweep", i), f"duplicate sweep point {label!r}; give each point a distinct `label`", label))
        return problems

    def _complete(self) -> None:
        self.env = _env_id(self.env)
        if self.paradigm is None:
            self.paradigm = catalogue.CATALOGUE[self.algorithm].paradigm
        if self.evaluation.interval is None:
            self.evaluation.interval = max(1, math.ceil(self.budget.value / 10))

    # ---- what the runner needs
    @property
    def env_context(self) -> dict[str, Any]:
        """The deployment context this phase runs in: id, base env, changes, description (mprl.envs)."""
        from mprl.envs import env_context

        return env_context(self.env)

    @property
    def entry(self) -> catalogue.AlgorithmEntry:
        """The catalogue entry of this phase's algorithm."""
        return catalogue.get_algorithm(self.algorithm)

    @property
    def resolved_paradigm(self) -> str:
        """offline, online or hybrid (the algorithm's, when `paradigm:` is not written)."""
        return self.paradigm or self.entry.paradigm

    @property
    def budget_unit(self) -> str:
        """'updates' (offline) or 'env_steps' (online, hybrid)."""
        return self.budget.unit

    @property
    def budget_value(self) -> int:
        return self.budget.value

    @property
    def dataset_id(self) -> Optional[str]:
        return self.dataset.id if self.dataset is not None else None

    @property
    def dataset_build(self) -> Optional[DatasetBuild]:
        """How to build the dataset if it is missing (None: never build)."""
        return self.dataset.build if self.dataset is not None else None

    @property
    def dataset_from(self) -> Optional[list[str]]:
        """The earlier phases whose experience is this phase's dataset (`dataset: {from: ...}`)."""
        return self.dataset.from_phases if self.dataset is not None else None

    @property
    def chooses(self) -> bool:
        """Whether this phase starts from a validated choice (`init_from: {best_of: ...}`)."""
        return self.init_from is not None and self.init_from.best_of is not None

    @property
    def init_from_phase(self) -> Optional[str]:
        """The earlier phase whose selected checkpoint initialises this one, if any."""
        return self.init_from.phase if self.init_from is not None else None

    @property
    def init_checkpoint_path(self) -> Optional[str]:
        """The checkpoint path/URI that initialises this phase, if given explicitly."""
        return self.init_from.checkpoint if self.init_from is not None else None


def _ensemble_source_problems(phases: list, first_index: dict[str, int]) -> list[tuple[tuple, str, Any]]:
    """`init_from: {phase: P, top_k: K, as: ensemble}` takes one checkpoint from each of K trials of P: P must run at least K."""
    problems = []
    for i, phase in enumerate(phases):
        init = _get(phase, "init_from")
        ensemble, top_k = _init_ensemble(init)
        source = _get(init, "phase")
        if not ensemble or not isinstance(top_k, int) or source not in first_index or first_index[source] >= i:
            continue
        earlier = phases[first_index[source]]
        sweep = _get(earlier, "sweep")
        if isinstance(sweep, Mapping) and sweep:
            continue  # a search: its number of trials is tune.num_samples × repeats
        seeds = _get(_get(earlier, "tune"), "seeds")
        seeds = [seeds] if isinstance(seeds, int) else (seeds if isinstance(seeds, list) else [0])
        trials = len(seeds) * max(1, len(sweep) if isinstance(sweep, list) else 1)
        if trials < top_k:
            problems.append((("phases", i, "init_from", "top_k"), f"top_k: {top_k} needs {top_k} trials of {source!r}, which runs {trials} "
                             f"({len(seeds)} seed(s)); give {source!r} tune.seeds with {top_k} seeds or lower top_k", top_k))
    return problems


def _regime_mode(regime: Any) -> str | None:
    """The mode of a raw `regime:` value (None when malformed: the structure check reports it)."""
    if isinstance(regime, bool):
        return "diagnose" if regime else "off"
    mode = _get(regime, "mode") if isinstance(regime, (Mapping, BaseModel)) else regime
    return mode if isinstance(mode, str) else None


def _init_ensemble(init: Any) -> tuple[bool, Any]:
    """(whether a raw or built init_from asks for an ensemble, its top_k)."""
    if isinstance(init, Mapping):
        return bool(init.get("ensemble") or init.get("as") == "ensemble"), init.get("top_k")
    if isinstance(init, BaseModel):
        return bool(_get(init, "ensemble")), _get(init, "top_k")
    return False, None


def ensemble_algorithms() -> list[str]:
    """The catalogue's algorithms that `init_from: {..., as: ensemble}` can start (their settings name the ensemble size)."""
    out = []
    for name in catalogue.algorithm_names():
        try:
            if getattr(catalogue.get_algorithm(name).settings, "ensemble_setting", None):
                out.append(name)
        except Exception:  # noqa: BLE001 - a broken package is reported where it is used
            continue
    return out


def _ensemble_problems(entry: catalogue.AlgorithmEntry, config: Mapping, init: Any) -> list[tuple[tuple, str, Any]]:
    """`as: ensemble` needs an ensemble algorithm whose size is top_k; an ensemble of K > 1 needs K checkpoints."""
    ensemble, top_k = _init_ensemble(init)
    if init is None:
        return []
    try:
        settings = entry.settings
    except ImportError:  # the algorithm's package is reported where its config is used
        return []
    setting = getattr(settings, "ensemble_setting", None)
    if ensemble and setting is None:
        return [(("init_from", "as"), f"{entry.name} is not an ensemble algorithm, so it cannot start from {top_k} checkpoints at once; "
                 f"`as: ensemble` is for {', '.join(ensemble_algorithms()) or 'ensemble algorithms'} (or drop `as: ensemble` and top_k)", "ensemble")]
    if setting is None:
        return []
    size = config.get(setting, settings.model_fields[setting].default)
    if not isinstance(size, int) or isinstance(size, bool):
        return []  # the settings check reports it
    if ensemble and isinstance(top_k, int) and top_k != size:
        return [(("init_from", "top_k"), f"top_k: {top_k} hands on {top_k} checkpoints, but the {entry.name} ensemble has {setting}: {size} "
                 f"members; make them equal (config: {{{setting}: {top_k}}})", top_k)]
    if not ensemble and size > 1 and not (isinstance(init, Mapping) and ("top_k" in init or "as" in init)):  # those get their own message
        return [(("init_from",), f"{entry.name} is an ensemble of {setting}: {size} members and starts from one checkpoint each: write "
                 f"init_from: {{phase: PHASE, top_k: {size}, as: ensemble}} (or set {setting}: 1 to start from one checkpoint)", _show(init))]
    return []


def _regime_problems(entry: catalogue.AlgorithmEntry, regime: Any, paradigm: str, warm: bool) -> list[tuple[tuple, str, Any]]:
    """`regime: auto` (or a family) needs a warm-started online or hybrid phase whose algorithm
    has the interventions' settings (both families' for auto: the diagnosis picks one at run time)."""
    from mprl.regime import family_settings

    mode = _regime_mode(regime)
    if mode not in ("auto", "pi0_centric", "d_centric"):
        return []
    loc = ("regime", "mode") if isinstance(regime, Mapping) else ("regime",)
    if paradigm == "offline":
        return [(loc, f"regime: {mode} chooses how an online or hybrid phase fine-tunes a pretrained policy; this is an offline phase: remove it", mode)]
    if not warm:
        return [(loc, (f"regime: {mode} needs a warm-started phase (init_from: an earlier phase or a checkpoint): it compares the "
                       "pretrained policy with the data; remove it or add init_from"), mode)]
    families = ("pi0_centric", "d_centric") if mode == "auto" else (mode,)
    settings = {k: v for family in families for k, v in family_settings(family, 100_000, paradigm).items()}
    refused = entry.settings.problems(settings, paradigm)
    if not refused:
        return []
    key, message, _ = refused[0]
    why = f"{entry.name} has no setting {key!r}" if message == "unknown" else message
    which = "the interventions of both families (the diagnosis picks one when the phase starts)" if mode == "auto" else f"the {mode} interventions"
    return [(loc, (f"regime: {mode} sets {', '.join(settings)}, {which}, but {why}; "
                   "or write regime: diagnose to only record the regime"), mode)]


def _regime_data_problems(phases: list, first_index: dict[str, int]) -> list[tuple[tuple, str, Any]]:
    """`regime: auto` (or a family) needs the data to compare π0 with: the phase's own `dataset:`,
    or that of the phase it starts from (for best_of, of one of its candidates)."""
    problems: list[tuple[tuple, str, Any]] = []
    for i, phase in enumerate(phases):
        regime = _get(phase, "regime")
        mode = _regime_mode(regime)
        if mode not in ("auto", "pi0_centric", "d_centric") or _get(phase, "dataset") is not None:
            continue
        init = _get(phase, "init_from")
        if init is None:
            continue  # the phase check says it needs a warm start
        sources = [init] if isinstance(init, str) else [_get(init, "phase")] if _get(init, "phase") is not None else list(_get(init, "best_of") or [])
        if any(isinstance(n, str) and n in first_index and _get(phases[first_index[n]], "dataset") is not None for n in sources):
            continue
        loc = ("phases", i, "regime") + (("mode",) if isinstance(regime, Mapping) else ())
        start = f"the phase it starts from ({', '.join(map(str, sources))}) has no dataset either" if sources else "it starts from a checkpoint"
        problems.append((loc, (f"regime: {mode} compares the pretrained policy with the data, but this phase has no `dataset:` and {start}; "
                               "give it a dataset (paradigm: hybrid), start it from an offline phase, or write regime: diagnose"), mode))
    return problems


def _selection_problems(data: Mapping) -> list[tuple[tuple, str, Any]]:
    """Transition points must lie inside the budget and their checkpoints must be kept."""
    select, budget, tune = data.get("select"), data.get("budget"), data.get("tune")
    if not isinstance(select, Mapping) or not isinstance(select.get("at"), list):
        return []
    problems: list[tuple[tuple, str, Any]] = []
    units = [budget.get(u) for u in BUDGET_UNITS] if isinstance(budget, Mapping) else []
    total = next((u for u in units if isinstance(u, int) and u > 0), None)
    for i, p in enumerate(select["at"]):
        if total is not None and isinstance(p, (int, float)) and p > 1 and p > total:
            problems.append((("select", "at", i), f"transition point {p} lies beyond the budget ({total:,}); give a fraction ≤ 1 or a count ≤ the budget", p))
    if isinstance(tune, Mapping) and tune.get("checkpoint_num_to_keep") is not None:
        problems.append((("tune", "checkpoint_num_to_keep"), "select: {at: ...} needs every checkpoint kept; remove checkpoint_num_to_keep", tune.get("checkpoint_num_to_keep")))
    return problems


def _phase_paradigm(phase: Any) -> Optional[str]:
    """A raw phase's paradigm: written, else its algorithm's default (None if unknown)."""
    paradigm = _get(phase, "paradigm")
    if isinstance(paradigm, str):
        return paradigm
    entry = catalogue.CATALOGUE.get(_get(phase, "algorithm")) if isinstance(_get(phase, "algorithm"), str) else None
    return entry.paradigm if entry is not None else None


def _dataset_sources(dataset: Any) -> Any:
    """`from:` of a raw dataset mapping (or `from_phases` of a parsed or dumped one)."""
    sources = _get(dataset, "from") if isinstance(dataset, Mapping) and "from" in dataset else _get(dataset, "from_phases")
    return [sources] if isinstance(sources, str) else sources


def _subroutine_problems(phases: list, names: list[Optional[str]], first_index: dict[str, int]) -> list[tuple[tuple, str, Any]]:
    """Offline RL as an online subroutine: `dataset: {from: ...}` and `init_from: {best_of: ...,
    keep: ...}` name earlier phases of the right kind, and offline validation has held-out data."""
    problems: list[tuple[tuple, str, Any]] = []

    def earlier(i: int, name: Any, loc: tuple, what: str) -> Optional[int]:
        """The index of the earlier phase `name`, or None with a problem recorded."""
        if not isinstance(name, str) or not _PHASE_NAME_RE.fullmatch(name):
            return None  # the structure check reports it
        before = list(dict.fromkeys(n for n in names[:i] if n is not None))
        allowed = f"earlier phases: {', '.join(before)}" if before else "this is the first phase, so none"
        if name == names[i]:
            problems.append((loc, f"{what} cannot be the phase itself ({name!r}); name an earlier phase ({allowed})", name))
        elif name in first_index and first_index[name] > i:
            problems.append((loc, f"{name!r} is a later phase (phases[{first_index[name]}]); {what} must be an earlier phase ({allowed})", name))
        elif name not in first_index:
            close = _did_you_mean(name, before)
            problems.append((loc, f"unknown phase {name!r}" + (f"; did you mean {close!r}?" if close else "") + f" ({allowed})", name))
        else:
            return first_index[name]
        return None

    def collects(j: int, loc: tuple, name: str, what: str) -> None:
        """Phase j must be an online/hybrid phase that keeps a replay."""
        source = phases[j]
        paradigm = _phase_paradigm(source)
        entry = catalogue.CATALOGUE.get(_get(source, "algorithm")) if isinstance(_get(source, "algorithm"), str) else None
        if paradigm == "offline":
            problems.append((loc, f"{name!r} is an offline phase: it collects no experience; {what} names an online or hybrid phase", name))
        elif entry is not None and "checkpoint_replay" not in entry.settings.model_fields:
            problems.append((loc, f"{name!r} runs {entry.name}, which keeps no replay to hand on; {what} names an online or hybrid phase of an off-policy algorithm (sac, td3, ...)", name))
        config = _get(source, "config")
        if what.startswith("dataset") and isinstance(config, Mapping) and config.get("checkpoint_replay") is False:
            problems.append((loc, f"{name!r} sets checkpoint_replay: false, but its replay is this dataset; remove that setting", name))

    for i, phase in enumerate(phases):
        dataset = _get(phase, "dataset")
        sources = _dataset_sources(dataset)
        for k, name in enumerate(sources if isinstance(sources, list) else []):
            loc = ("phases", i, "dataset", "from") + ((k,) if len(sources) > 1 else ())
            j = earlier(i, name, loc, "dataset: {from: ...}")
            if j is not None:
                collects(j, loc, name, "dataset: {from: ...}")
        init = _get(phase, "init_from")
        best_of = _get(init, "best_of") if isinstance(init, (Mapping, BaseModel)) else None
        if not isinstance(best_of, list):
            continue
        for k, name in enumerate(best_of):
            earlier(i, name, ("phases", i, "init_from", "best_of", k), "a best_of candidate")
        keep = _get(init, "keep")
        if keep is not None:
            j = earlier(i, keep, ("phases", i, "init_from", "keep"), "keep (the paused phase)")
            if j is not None and _phase_paradigm(phases[j]) == "offline":
                problems.append((("phases", i, "init_from", "keep"), f"{keep!r} is an offline phase; `keep` names the paused online or hybrid phase", keep))
        validation = _get(init, "validation") or "online"
        budget = _get(phase, "budget")
        charge = _get(init, "charge")
        if validation == "online" and charge is not False and isinstance(budget, Mapping) and budget.get("updates") is not None:
            problems.append((("phases", i, "init_from", "charge"), "the validation's env steps are charged to an env-step budget; this phase counts updates: write charge: false", charge))
        if validation == "offline":
            held: set = set()
            for k, name in enumerate(best_of):
                j = first_index.get(name) if isinstance(name, str) else None
                if j is None or j >= i:
                    continue
                ds = _get(phases[j], "dataset")
                src = _dataset_sources(ds)
                fraction = _get(ds, "held_out") or 0
                if not src or not fraction:
                    problems.append((("phases", i, "init_from", "validation"),
                                     f"offline validation scores candidates on held-out episodes of their dataset, but candidate {name!r} "
                                     f"has none: give it dataset: {{from: PHASE, held_out: 0.2}} (or write validation: online)", validation))
                    break
                held.add((tuple(src), float(fraction), _get(ds, "seed") or 0))
            if len(held) > 1:
                problems.append((("phases", i, "init_from", "validation"),
                                 "offline validation compares candidates on one held-out set: give every best_of phase the same "
                                 "dataset `from`, `held_out` and `seed` (their `take` may differ)", validation))
    return problems


def _article(word: Optional[str]) -> str:
    word = word or ""
    return ("an " if word[:1] in "aeiou" and word else "a ") + word


def sweep_label(point: Mapping[str, Any]) -> str:
    """A sweep point's name in tables: its `label`, else its settings as 'k=v, k=v'."""
    if point.get("label") is not None:
        return str(point["label"])
    return ", ".join(f"{k}={v}" for k, v in point.items() if k != "label")


class UnknownPhase(MprlError, KeyError):
    """``PipelineSpec.phase(name)`` was asked for a phase the pipeline does not have."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class PipelineSpec(_SpecModel):
    """A pipeline: an ordered list of phases, each starting from an earlier one's
    checkpoint, plus where results go and which Ray cluster runs them."""

    yaml_shape: ClassVar[str] = "with name, phases and optionally storage_path, seed, ray"

    name: PipelineName = Field(description="the pipeline's name ([A-Za-z0-9_.-]+), used in run folder names")
    storage_path: Annotated[str, BeforeValidator(_storage_path)] = Field(
        "./mprl_results", description="where checkpoints, metrics and videos go: a local folder or a URI (s3://, gs://, file://)"
    )
    seed: Seed = Field(0, description="base seed of the pipeline")
    ray: RayOptions = Field(default_factory=RayOptions, description="which Ray cluster runs the pipeline")
    videos: Videos = Field(default_factory=Videos, description="behaviour videos of checkpoints")
    tracking: Tracking = Field(default_factory=Tracking, description="TensorBoard, MLflow and W&B through Tune's logger callbacks")
    phases: list[Phase] = Field(
        min_length=1, description="the phases, in order: a list of mappings with name, algorithm, env, budget, ..."
    )

    _source: str = PrivateAttr("<dict>")

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        phases = data.get("phases")
        if not isinstance(phases, list):
            return []
        problems: list[tuple[tuple, str, Any]] = []
        first_index: dict[str, int] = {}
        names: list[Optional[str]] = []
        for i, phase in enumerate(phases):
            name = _get(phase, "name")
            name = name if isinstance(name, str) else None
            names.append(name)
            if name is None:
                continue
            if name in first_index:
                problems.append((
                    ("phases", i, "name"),
                    f"duplicate phase name {name!r} (already used by phases[{first_index[name]}]); "
                    f"phase names must be unique",
                    name,
                ))
            else:
                first_index[name] = i
        for i, phase in enumerate(phases):
            init = _get(phase, "init_from")
            loc: tuple = ("phases", i, "init_from")
            if isinstance(init, (Mapping, BaseModel)):
                init, loc = _get(init, "phase"), loc + ("phase",)
            if not isinstance(init, str) or not _PHASE_NAME_RE.fullmatch(init):
                continue
            earlier = list(dict.fromkeys(n for n in names[:i] if n is not None))
            allowed = f"earlier phases: {', '.join(earlier)}" if earlier else "this is the first phase, so none"
            if init == names[i]:
                message = f"a phase cannot start from itself ({init!r}); name an earlier phase ({allowed})"
            elif init in first_index and first_index[init] > i:
                message = (
                    f"{init!r} is a later phase (phases[{first_index[init]}]); init_from may only name "
                    f"an earlier phase ({allowed})"
                )
            elif init not in first_index:
                close = _did_you_mean(init, earlier)
                message = f"unknown phase {init!r}" + (f"; did you mean {close!r}?" if close else "") + f" ({allowed})"
            else:
                continue
            problems.append((loc, message, init))
        problems += _ensemble_source_problems(phases, first_index)
        problems += _subroutine_problems(phases, names, first_index)
        problems += _regime_data_problems(phases, first_index)
        return problems

    def _complete(self) -> None:
        # A phase whose experience a later one takes as a dataset stores its replay in every
        # checkpoint: the dataset is built from what it really collected (mprl.datasets.from_phase).
        sources = {name for p in self.phases for name in (p.dataset_from or [])}
        for p in self.phases:
            if p.name in sources:
                p.config["checkpoint_replay"] = True

    # ---- what the runner needs
    @property
    def source(self) -> str:
        """The file the spec was loaded from ('<dict>' when parsed from a mapping)."""
        return self._source

    @property
    def phase_names(self) -> list[str]:
        return [p.name for p in self.phases]

    def phase(self, name: str) -> Phase:
        """The phase called ``name`` (UnknownPhase, with a did-you-mean, otherwise)."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        close = _did_you_mean(name, self.phase_names)
        hint = f"; did you mean {close!r}?" if close else ""
        raise UnknownPhase(f"pipeline {self.name!r} has no phase {name!r}{hint} Phases: {', '.join(self.phase_names)}")

    def phase_index(self, name: str) -> int:
        return self.phases.index(self.phase(name))

    @property
    def storage_is_uri(self) -> bool:
        return is_uri(self.storage_path)

    @property
    def resolved_storage_path(self) -> str:
        """storage_path as Ray Tune wants it: URIs unchanged, local folders absolute
        (relative ones resolve against the current directory)."""
        return self.storage_path if self.storage_is_uri else os.path.abspath(self.storage_path)

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved spec (defaults filled) as plain data; parses back to an equal spec."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


