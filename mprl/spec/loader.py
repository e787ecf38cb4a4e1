"""Loading a pipeline: YAML → models, every problem in one SpecError."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional, Union

import yaml
from pydantic import (
    ValidationError,
)

from mprl.errors import SpecError
from mprl.spec.messages import _duplicate_keys, _explain, _render, _show, _yaml_error
from mprl.spec.models import PipelineSpec


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


