"""The pipeline spec: typed, validated models of a multi-phase pipeline YAML.

``load_pipeline(path)`` / ``parse_pipeline(data)`` turn a pipeline file into a
:class:`PipelineSpec`, or raise ONE :class:`~mprl.errors.SpecError` whose message starts
with the file name and lists every problem, one per line, as
``<field path>: <what is wrong, the bad value, what is allowed> (line N)``.
An invalid file must fail before any work starts, so validation is pure: it reads the
file, the algorithm catalogue and Gymnasium's registry, and imports an algorithm's config
class only when a phase overrides its settings under ``config:``. It touches no dataset,
checkpoint, storage or Ray.

Every model checks its own structure with pydantic and its meaning (catalogue names,
environment ids, budget units, references between phases) from the raw input, so a file
with several independent mistakes reports all of them at once, and building the models
directly in Python (``PipelineSpec.model_validate(...)``) enforces the same rules.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import math
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Optional, Union, get_args, get_origin

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
from pydantic_core import PydanticCustomError

from mprl import catalogue
from mprl.errors import MprlError, SpecError
from mprl.storage import is_uri

__all__ = [
    "BUDGET_UNITS",
    "DATASET_QUALITIES",
    "PARADIGM_UNITS",
    "Budget",
    "DatasetBuild",
    "DatasetRef",
    "Evaluation",
    "InitFrom",
    "Phase",
    "PipelineSpec",
    "RayOptions",
    "Selection",
    "StopRule",
    "TuneSettings",
    "UnknownPhase",
    "Videos",
    "load_pipeline",
    "parse_pipeline",
]

Paradigm = Literal["offline", "online", "hybrid"]
BudgetUnit = Literal["updates", "env_steps"]
Quality = Literal["random", "medium", "medium-replay", "expert"]
Metric = Literal["normalized_score", "evaluation_return"]

#: The budget unit of each paradigm: offline phases count gradient updates, online and
#: hybrid phases count environment steps (the axis their learning curves are drawn on).
PARADIGM_UNITS: dict[str, str] = {"offline": "updates", "online": "env_steps", "hybrid": "env_steps"}
BUDGET_UNITS: tuple[str, ...] = ("updates", "env_steps")
DATASET_QUALITIES: tuple[str, ...] = get_args(Quality)
_UNIT_WORDS = {"updates": "gradient updates", "env_steps": "environment steps"}

#: Algorithm settings a phase may not override under ``config:`` because a dedicated
#: spec field owns them (the runner sets them from that field).
RESERVED_SETTINGS: dict[str, str] = {
    "env": "the environment is set by the phase's `env:`",
    "seed": "seeds are set per trial from `seed:` and the phase's `tune.seeds:`",
    "dataset": "the dataset is set by the phase's `dataset:`",
    "dataset_root": "the dataset folder is MINARI_DATASETS_PATH where `mprl run` starts",
    "sweep_point": "list sweep points under the phase's `sweep:`",
    "init_checkpoint": "the starting checkpoint is set by the phase's `init_from:`",
    "budget_updates": "the budget is set by the phase's `budget:`",
    "budget_env_steps": "the budget is set by the phase's `budget:`",
    "eval_episodes": "set it with the phase's `evaluation.episodes:`",
    "eval_seed": "set it with the phase's `evaluation.seed:`",
    "paradigm": "set the phase's `paradigm:`",
}
#: RLlib settings that mprl's learners do not read: refused, with the setting that does the job.
RLLIB_BYPASSED: dict[str, str] = {
    "lr": "mprl's learners have one learning rate per network (actor_lr, critic_lr, ...)",
    "grad_clip": "mprl's learners do not clip gradients",
    "num_epochs": "mprl's learners sample their own minibatches; the number of updates follows the budget and utd",
    "minibatch_size": "the minibatch is train_batch_size_per_learner",
    "training_intensity": "the update-to-data ratio is utd",
    "num_steps_sampled_before_learning_starts": "use learning_starts",
    "replay_buffer_config": "the replay lives in the learner: buffer_size, and replay for hybrid phases",
    "target_network_update_freq": "targets are Polyak-averaged every update: tau",
}

#: The per-iteration setting that one evaluation interval becomes, by budget unit.
ITERATION_SETTINGS = {"updates": "updates_per_iteration", "env_steps": "env_steps_per_iteration"}

#: Modules imported (if present) before checking environment ids, so that environments
#: registered by mprl itself (e.g. sim-to-real variants) are known to the registry.
ENV_REGISTRATION_MODULES: tuple[str, ...] = ("mprl.envs",)

_PIPELINE_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_PHASE_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
# Minari's DATASET_ID_RE with the version made mandatory (minari.load_dataset needs it).
_DATASET_ID_RE = re.compile(r"(?:(?P<namespace>[-_\w][-_\w/]*[-_\w]+)/)?(?P<dataset>[-_\w]+?)-v(?P<version>\d+)")
_HOST_PORT_RE = re.compile(r"(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}")
_MPRL_ERROR = "mprl"
_MAX_SEED = 2**32 - 1


# --------------------------------------------------------------------------- helpers


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is already the final, user-facing text."""
    return PydanticCustomError(_MPRL_ERROR, "{_m}", {"_m": message})


def _show(value: Any, limit: int = 80) -> str:
    """The bad value as the user wrote it (YAML spelling for null/true/false)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        text = repr(value)
    elif isinstance(value, (Mapping, list, tuple)):
        try:
            flow = yaml.safe_dump(
                dict(value) if isinstance(value, Mapping) else list(value),
                default_flow_style=True, sort_keys=False, width=10_000,
            ).strip()
        except yaml.YAMLError:
            flow = repr(value)
        text = ("a mapping " if isinstance(value, Mapping) else "a list ") + flow
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _did_you_mean(word: Any, choices: Any, cutoff: float = 0.6) -> str | None:
    """The closest choice, compared case-insensitively (for 'did you mean ...?' hints)."""
    if not isinstance(word, str):
        return None
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(str(choice).lower(), str(choice))
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[close[0]] if close else None


def _quoted(items: Any) -> str:
    return ", ".join(repr(i) for i in items)


def _to_int(value: Any) -> int:
    """An integer from YAML: ints, integral floats (1.0e+6) and numeric strings.

    PyYAML (YAML 1.1) reads ``1e6`` as the *string* '1e6', a common trap in budgets, so
    numeric strings that denote an integer are accepted; booleans are not.
    """
    if isinstance(value, bool):
        raise _problem(f"expected an integer, got {_show(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number.is_integer():
            return int(number)
    raise _problem(f"expected an integer, got {_show(value)}")


def _positive_int(value: Any) -> int:
    number = _to_int(value)
    if number < 1:
        raise _problem(f"expected a positive integer, got {_show(value)}")
    return number


def _seed(value: Any) -> int:
    number = _to_int(value)
    if not 0 <= number <= _MAX_SEED:
        raise _problem(f"expected a seed between 0 and 2**32 - 1, got {_show(value)}")
    return number


def _max_failures(value: Any) -> int:
    number = _to_int(value)
    if number < -1:
        raise _problem(f"expected a number of retries >= 0 (or -1 for unlimited), got {_show(value)}")
    return number


def _name_validator(pattern: re.Pattern[str], allowed: str):
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _problem(f"expected a string, got {_show(value)}")
        if not pattern.fullmatch(value):
            raise _problem(f"{_show(value)} is not a valid name: use only {allowed} (it names run folders)")
        return value

    return check


def _non_empty_str(what: str):
    def check(value: Any) -> str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip():
            raise _problem(f"expected {what}, got {_show(value)}")
        return value

    return check


def _expand_local(value: str) -> str:
    """``~`` expanded for local paths; URIs (s3://, gs://, file://, ...) kept as written."""
    return value if is_uri(value) else os.path.expanduser(value)


def _storage_path(value: Any) -> str:
    return _expand_local(_non_empty_str("a local folder or a URI such as 's3://bucket/prefix'")(value))


def _checkpoint_path(value: Any) -> str:
    return _expand_local(_non_empty_str("a checkpoint folder or URI")(value))


def _ray_address(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text in ("auto", "local") or (text.startswith("ray://") and len(text) > 6) or _HOST_PORT_RE.fullmatch(text):
            return text
    raise _problem(
        f"expected null (start an embedded local Ray), 'auto' (the running cluster this machine belongs to), "
        f"'ray://HOST:10001' (Ray Client) or 'HOST:6379' (a GCS address), got {_show(value)}"
    )


def _dataset_id(value: Any) -> str:
    if not isinstance(value, str):
        raise _problem(f"expected a Minari dataset id such as 'mprl/hopper/medium-v0', got {_show(value)}")
    if not _DATASET_ID_RE.fullmatch(value):
        raise _problem(
            f"{_show(value)} is not a Minari dataset id: expected '(namespace/)name-vN', e.g. 'mprl/hopper/medium-v0'"
        )
    return value


def _none_to_empty(value: Any) -> Any:
    """``key:`` with nothing after it (YAML null) means 'all defaults', not an error."""
    return {} if value is None else value


def _seed_list(value: Any) -> Any:
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return [value]  # a single seed written without brackets
    return value


PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
Seed = Annotated[int, BeforeValidator(_seed)]
PipelineName = Annotated[str, BeforeValidator(_name_validator(_PIPELINE_NAME_RE, "letters, digits, '_', '.' and '-'"))]
PhaseName = Annotated[str, BeforeValidator(_name_validator(_PHASE_NAME_RE, "letters, digits, '_' and '-'"))]


def _quality_from_id(dataset_id: str) -> Optional[str]:
    """'mprl/hopper/medium-replay-v0' → 'medium-replay' (None when the name does not say)."""
    match = _DATASET_ID_RE.fullmatch(dataset_id)
    if not match:
        return None
    name = match.group("dataset").lower()
    if name.endswith("medium-expert"):  # D4RL's mixture, not one of the qualities we build
        return None
    for quality in sorted(DATASET_QUALITIES, key=len, reverse=True):
        if name == quality or name.endswith(("-" + quality, "_" + quality, "/" + quality)):
            return quality
    return None


def _env_problem(env: str) -> Optional[str]:
    """Why ``env`` is not a registered Gymnasium id (None when it is)."""
    import gymnasium  # noqa: F401  (registers Gymnasium's own environments)
    from gymnasium.envs.registration import registry

    notes = []
    for module in ENV_REGISTRATION_MODULES:
        try:
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)
        except Exception as exc:  # a broken registration module must not hide the real problem
            notes.append(f"{module} failed to import: {type(exc).__name__}: {exc}")
    env_id = env
    if ":" in env:  # Gymnasium's "module:EnvId" form: the module registers the id on import
        module, _, env_id = env.partition(":")
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"cannot import module {module!r} that should register {env_id!r} ({type(exc).__name__}: {exc})"
    if env_id in registry:
        return None
    message = f"unknown environment {env!r}"
    close = _did_you_mean(env_id, registry.keys())
    if close:
        message += f"; did you mean {close!r}?"
    message += " Use a registered Gymnasium id such as 'Hopper-v5' (see gymnasium.pprint_registry())"
    if notes:
        message += f" [{'; '.join(notes)}]"
    return message


def _settings_model(entry: catalogue.AlgorithmEntry) -> Any:
    return entry.settings


def _config_problems(entry: catalogue.AlgorithmEntry, config: Mapping, unit: Optional[str], paradigm: Optional[str] = None) -> list[tuple]:
    """Each setting of a phase's `config:` (or a sweep point) that the algorithm refuses:
    reserved, unknown, of the wrong type or range, or meaningless in this phase's paradigm."""
    keys = [k for k in config if isinstance(k, str)]
    if not keys:
        return []
    try:
        model = _settings_model(entry)
    except Exception as exc:  # the algorithm package is missing or broken: say so, once
        return [(
            ("config",),
            f"cannot check the settings of {entry.name}: its config class {entry.config_path} "
            f"failed to load ({type(exc).__name__}: {exc})",
            dict(config),
        )]
    fields = list(model.model_fields)
    reserved = dict(RESERVED_SETTINGS)
    if unit in ITERATION_SETTINGS:  # one training iteration = one evaluation interval
        reserved[ITERATION_SETTINGS[unit]] = "one training iteration is one evaluation interval: set `evaluation.interval:`"
    problems = []
    for key in keys:
        if key in reserved:
            problems.append((("config", key), f"{key!r} cannot be set under config: {reserved[key]}", config[key]))
    checked = {k: config[k] for k in keys if k not in reserved}
    for key, message, value in model.problems(checked, paradigm):
        if message != "unknown":
            problems.append((("config", key), message, value))
            continue
        message = f"unknown setting {key!r} for {entry.name}"
        if key in RLLIB_BYPASSED:
            message += f": {RLLIB_BYPASSED[key]}"
        close = _did_you_mean(key, fields)
        if close:
            message += f"; did you mean {close!r}?"
        else:
            similar = difflib.get_close_matches(key, sorted(fields), n=4, cutoff=0.4)
            message += (
                f"; similar settings: {_quoted(similar)}" if similar
                else f"; list its {len(fields)} settings with `mprl algorithms {entry.name}`"
            )
        problems.append((("config", key), message, key))
    return problems


def _phase_problems(entry: catalogue.AlgorithmEntry, settings: Mapping, paradigm: str, budget: Any, warm_start: bool) -> list[tuple]:
    """Settings that make the phase pointless (e.g. no gradient update within its budget)."""
    if not isinstance(budget, Mapping):
        return []
    unit = next((u for u in BUDGET_UNITS if isinstance(budget.get(u), int)), None)
    if unit is None:
        return []
    try:
        values = _settings_model(entry).model_validate(dict(settings))
    except Exception:  # reported by _config_problems
        return []
    return [(("config", key), message, settings.get(key)) for key, message in values.phase_problems(paradigm, unit, budget[unit], warm_start)]


def _get(obj: Any, key: str) -> Any:
    """A field from raw input (a mapping) or from an already-built model."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    if isinstance(obj, BaseModel):
        return getattr(obj, key, None)
    return None


def _annotation_model(annotation: Any) -> Optional[type[BaseModel]]:
    """The pydantic model inside ``Optional[...]``, ``list[...]``, ``Annotated[...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _annotation_model(arg)
        if found is not None:
            return found
    return None


def _literal_choices(annotation: Any) -> tuple:
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    for arg in get_args(annotation):
        found = _literal_choices(arg)
        if found:
            return found
    return ()


def _field_at(model: type[BaseModel], loc: tuple) -> tuple[Optional[type[BaseModel]], Any]:
    """(the model that owns the last named field of ``loc``, that field's FieldInfo)."""
    owner: Optional[type[BaseModel]] = model
    current: Optional[type[BaseModel]] = model
    field = None
    for part in loc:
        if isinstance(part, str) and current is not None and part in current.model_fields:
            owner, field = current, current.model_fields[part]
            current = _annotation_model(field.annotation)
        elif isinstance(part, str):
            current = None
    return owner, field


_TYPE_WORDS = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "string_type": "a string", "bool_type": "true or false", "bool_parsing": "true or false",
    "list_type": "a list", "tuple_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def _owner_loc(error: dict) -> tuple:
    """Where to report an error: a bad mapping *key* is reported at the mapping itself."""
    loc = tuple(error["loc"])
    if error["type"] == "invalid_key" and loc:
        return loc[:-1]
    if loc and loc[-1] == "[key]":
        return loc[:-2]
    return loc


def _explain(model: type[BaseModel], error: dict) -> str:
    """A pydantic error as one readable sentence: what is wrong, the value, what is allowed."""
    kind, loc, value, ctx = error["type"], tuple(error["loc"]), error.get("input"), error.get("ctx") or {}
    if kind == _MPRL_ERROR:
        return error["msg"]
    owner, field = _field_at(model, loc)
    description = getattr(field, "description", None)
    if kind == "invalid_key" or (loc and loc[-1] == "[key]"):
        return f"keys must be strings, got {_show(value)}"
    if kind == "missing":
        return "required field is missing" + (f": {description}" if description else "")
    if kind == "extra_forbidden":
        parent_field = _field_at(model, loc[:-1])[1] if loc[:-1] else None
        parent = (_annotation_model(parent_field.annotation) if parent_field is not None else None) or model
        allowed = list(parent.model_fields)
        message = f"unknown field {loc[-1]!r}"
        close = _did_you_mean(loc[-1], allowed)
        message += f"; did you mean {close!r}?" if close else "."
        message += f" Allowed fields: {', '.join(allowed)}"
        return message + (parent.extra_hint if not close else "")
    if kind == "literal_error":
        choices = _literal_choices(field.annotation) if field is not None else ()
        allowed = _quoted(choices) if choices else ctx.get("expected", "")
        message = f"{_show(value)} is not allowed; choose one of {allowed}"
        close = _did_you_mean(value, choices) if choices else None
        return message + (f"; did you mean {close!r}?" if close else "")
    if kind in _TYPE_WORDS:
        shape = ""
        if kind in ("model_type", "dict_type", "model_attributes_type"):
            target = _annotation_model(field.annotation) if field is not None and loc else model
            shape = f" {target.yaml_shape}" if target is not None and getattr(target, "yaml_shape", "") else ""
        return f"expected {_TYPE_WORDS[kind]}{shape}, got {_show(value)}"
    if kind == "too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty" + (f": {description}" if description else "")
        return f"needs at least {ctx.get('min_length')} items, got {ctx.get('actual_length')}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        bound = next(iter(ctx.values()), "?")
        return f"must be {bounds[kind]} {bound}, got {_show(value)}"
    if kind in ("value_error", "assertion_error"):
        return f"{ctx.get('error', error['msg'])} (got {_show(value)})"
    return f"{error['msg']} (got {_show(value)})"


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


class DatasetRef(_SpecModel):
    """A Minari dataset, by id; written in YAML as the id alone or as {id, build}."""

    yaml_shape: ClassVar[str] = "{id: mprl/hopper/medium-v0, build: {...}} (or just the id string)"

    id: Annotated[str, BeforeValidator(_dataset_id)] = Field(
        description="a Minari dataset id '(namespace/)name-vN', e.g. 'mprl/hopper/medium-v0'"
    )
    build: Optional[DatasetBuild] = Field(None, description="build the dataset if it is missing (null: never build)")

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"id": data}
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
        if self.build is not None and self.build.quality is None:
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
    """Where a phase's networks come from: an earlier phase's selected checkpoint, or a
    checkpoint on disk. Written as the phase name alone or as {checkpoint: PATH}."""

    yaml_shape: ClassVar[str] = "{checkpoint: /path/to/checkpoint} (or an earlier phase's name)"

    phase: Optional[PhaseName] = Field(None, description="the name of an earlier phase")
    checkpoint: Optional[Annotated[str, BeforeValidator(_checkpoint_path)]] = Field(
        None, description="a checkpoint folder or URI"
    )

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"phase": data}
        if not isinstance(data, Mapping):
            raise _problem(
                f"expected null, the name of an earlier phase or a mapping {cls.yaml_shape}, got {_show(data)}"
            )
        return data

    @classmethod
    def _check(cls, data: Mapping) -> list[tuple[tuple, str, Any]]:
        given = [k for k in ("phase", "checkpoint") if data.get(k) is not None]
        if len(given) != 1 and not (set(data) - {"phase", "checkpoint"}):
            message = (
                "give an earlier phase's name or a checkpoint, not both" if given
                else "give an earlier phase's name or {checkpoint: PATH} (or null to start from fresh networks)"
            )
            return [((), message, dict(data))]
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

    @classmethod
    def _normalize(cls, data: Any) -> Any:
        return _none_to_empty(data)

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


ConfigOverrides = Annotated[dict[str, Any], BeforeValidator(_none_to_empty)]


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
    env: str = Field(description="a registered Gymnasium environment id, e.g. 'Hopper-v5'")
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
    sweep: list[dict[str, Any]] = Field(
        default_factory=list,
        description="sweep points: each a mapping of algorithm settings (as under config:) plus an optional "
        "`label`; one Tune trial per point and seed, and a table per point after the phase",
    )
    select: Selection = Field(
        default_factory=Selection, description="the checkpoints handed to the next phase: best, last, {top_k: K} or {at: [...]}"
    )
    stop: StopRule = Field(default_factory=StopRule, description="ending a trial before its budget: score threshold or plateau")

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
        sweep = data.get("sweep")
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
        if self.paradigm is None:
            self.paradigm = catalogue.CATALOGUE[self.algorithm].paradigm
        if self.evaluation.interval is None:
            self.evaluation.interval = max(1, math.ceil(self.budget.value / 10))

    # ---- what the runner needs
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
    def init_from_phase(self) -> Optional[str]:
        """The earlier phase whose selected checkpoint initialises this one, if any."""
        return self.init_from.phase if self.init_from is not None else None

    @property
    def init_checkpoint_path(self) -> Optional[str]:
        """The checkpoint path/URI that initialises this phase, if given explicitly."""
        return self.init_from.checkpoint if self.init_from is not None else None


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
        return problems

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


# --------------------------------------------------------------------------- loading


def _loc_path(loc: tuple) -> str:
    """('phases', 1, 'budget', 'env_steps') → 'phases[1].budget.env_steps'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            path += " (key)"
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


def _node_line(root: Optional[yaml.Node], loc: tuple) -> Optional[int]:
    """The 1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    if root is None:
        return None
    node, line = root, root.start_mark.line + 1
    for part in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    nxt, line = value_node, key_node.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            nxt = node.value[part]
            line = nxt.start_mark.line + 1
        if nxt is None:
            break
        node = nxt
    return line


def _duplicate_keys(node: Optional[yaml.Node], loc: tuple = ()) -> list[tuple[tuple, str, Any]]:
    """Keys written twice in one mapping: PyYAML silently keeps the last, hiding a mistake."""
    problems: list[tuple[tuple, str, Any]] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key, line = key_node.value, key_node.start_mark.line + 1
                if key in first:
                    problems.append((
                        loc + (key,),
                        f"key {key!r} is written twice (lines {first[key]} and {line}); keep one",
                        key,
                    ))
                else:
                    first[key] = line
                problems += _duplicate_keys(value_node, loc + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, loc + (i,))
    return problems


def _render(source: str, problems: list[tuple[tuple, str]], root: Optional[yaml.Node] = None) -> str:
    """The SpecError text: the file, then one problem per line, in document order."""

    def order(problem: tuple) -> tuple[int, int]:
        loc = problem[0]
        phase = loc[1] if len(loc) > 1 and loc[0] == "phases" and isinstance(loc[1], int) else -1
        return (_node_line(root, loc) or 0, phase) if root is not None else (phase, 0)

    lines = []
    seen = set()
    for loc, message in sorted(problems, key=order):
        line = _node_line(root, loc)
        text = f"  - {_loc_path(loc)}: {message}" + (f" (line {line})" if line else "")
        if text not in seen:
            seen.add(text)
            lines.append(text)
    count = f"{len(lines)} problem" + ("s" if len(lines) != 1 else "")
    return f"{source}: invalid pipeline spec ({count}):\n" + "\n".join(lines)


def _parse(data: Any, source: str, root: Optional[yaml.Node] = None, extra: Optional[list] = None) -> PipelineSpec:
    if data is None:
        raise SpecError(f"{source}: the file is empty; a pipeline needs at least `name:` and `phases:`")
    if not isinstance(data, Mapping):
        raise SpecError(
            f"{source}: the top level must be a mapping with the keys name, phases (and optionally "
            f"storage_path, seed, ray), got {_show(data)}"
        )
    problems = [(loc, message) for loc, message, _ in (extra or [])]
    spec = None
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            problems.append((tuple(error["loc"]), _explain(PipelineSpec, error)))
    if problems:
        raise SpecError(_render(source, problems, root))
    assert spec is not None
    spec._source = source
    return spec


def parse_pipeline(data: Mapping[str, Any], source: str = "<dict>") -> PipelineSpec:
    """Validate an already-loaded pipeline mapping. ``source`` starts every error message."""
    return _parse(data, source)


def load_pipeline(path: Union[str, os.PathLike]) -> PipelineSpec:
    """Read and validate a pipeline YAML file; every problem is reported in one SpecError."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise SpecError(f"{source}: file not found (looked for {os.path.abspath(source)})") from None
    except IsADirectoryError:
        raise SpecError(f"{source}: is a directory, not a pipeline YAML file") from None
    except OSError as exc:
        raise SpecError(f"{source}: cannot read the file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not a UTF-8 text file (byte {exc.start}); is it really the YAML file?") from None

    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        raise SpecError(f"{source}: {_yaml_error(exc)}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return _parse(data, source, root, _duplicate_keys(root) if isinstance(data, Mapping) else None)


def _yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    message = f"invalid YAML{where}: {exc.problem or exc.context or 'syntax error'}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
    if "\\t" in str(exc.problem) or "\t" in str(exc.problem):
        message += "; YAML indentation must use spaces, not tabs"
    return message
