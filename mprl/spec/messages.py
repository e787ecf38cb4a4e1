"""The error-message engine: one readable line per problem, with the field path, the bad value, what is allowed and the YAML line."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal, Optional, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
)
from pydantic_core import PydanticCustomError

from mprl.spec.vocabulary import _MPRL_ERROR

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



def _yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    message = f"invalid YAML{where}: {exc.problem or exc.context or 'syntax error'}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
    if "\\t" in str(exc.problem) or "\t" in str(exc.problem):
        message += "; YAML indentation must use spaces, not tabs"
    return message

