"""Validators of single values (ids, seeds, paths, environments) and of an algorithm's settings."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import math
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Optional

from pydantic import (
    BeforeValidator,
)

from mprl import catalogue
from mprl.spec.messages import _did_you_mean, _problem, _quoted, _show
from mprl.spec.vocabulary import (
    _DATASET_ID_RE,
    _HOST_PORT_RE,
    _MAX_SEED,
    _PHASE_NAME_RE,
    _PIPELINE_NAME_RE,
    BUDGET_UNITS,
    DATASET_QUALITIES,
    ENV_REGISTRATION_MODULES,
    ITERATION_SETTINGS,
    RESERVED_SETTINGS,
    RLLIB_BYPASSED,
)
from mprl.storage import is_uri


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
    if env_id in registry or _ensure_variant(env_id):
        return None
    message = f"unknown environment {env!r}"
    close = _did_you_mean(env_id, registry.keys())
    if close:
        message += f"; did you mean {close!r}?"
    message += " Use a registered Gymnasium id such as 'Hopper-v5' (see gymnasium.pprint_registry())"
    if notes:
        message += f" [{'; '.join(notes)}]"
    return message


def _ensure_variant(env_id: str) -> bool:
    """A self-describing deployment-context id (mprl.envs) is registered on first use."""
    try:
        from mprl.envs import ensure_registered
    except Exception:  # noqa: BLE001  (reported by the registration-module notes)
        return False
    return ensure_registered(env_id)


def _env_variant_problems(env: Mapping) -> list[tuple[tuple, str, Any]]:
    """Problems of `env: {id, dynamics, observation_noise, action_delay}` (a deployment context)."""
    from mprl.envs import variant_problems

    return [(("env", *loc), message, value) for loc, message, value in variant_problems(env)]


def _env_id(env: Any) -> Any:
    """The one string a phase's environment is named by: a deployment-context mapping becomes its
    canonical id (a named variant's id when the changes are one's, else a self-describing id)."""
    if not isinstance(env, Mapping):
        return env
    from mprl.envs import canonical_variant, variant_id

    return variant_id(canonical_variant(env))


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


