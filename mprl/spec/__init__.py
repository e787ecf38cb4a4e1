"""The pipeline spec: typed, validated models of a multi-phase pipeline YAML.

``load_pipeline(path)`` / ``parse_pipeline(data)`` turn a pipeline file into a
:class:`PipelineSpec`, or raise ONE :class:`~mprl.errors.SpecError` whose message starts
with the file name and lists every problem, one per line, as
``<field path>: <what is wrong, the bad value, what is allowed> (line N)``.
An invalid file must fail before any work starts, so validation is pure: it reads the
file, the algorithm catalogue (each algorithm's typed settings model) and Gymnasium's
registry. It touches no dataset,
checkpoint, storage or Ray.

Every model checks its own structure with pydantic and its meaning (catalogue names,
environment ids, budget units, references between phases) from the raw input, so a file
with several independent mistakes reports all of them at once, and building the models
directly in Python (``PipelineSpec.model_validate(...)``) enforces the same rules.

Modules, each depending only on those above it:
- `vocabulary`: paradigms, budget units, reserved settings, name patterns;
- `messages`: the error-message engine (one line per problem, field path, YAML line);
- `values`: validators of single values and of an algorithm's settings;
- `models`: the pydantic models (datasets, budgets, phases, the pipeline);
- `loader`: YAML → models, all problems in one SpecError.
"""

from mprl.spec.loader import load_pipeline, parse_pipeline
from mprl.spec.models import (
    Budget,
    DatasetBuild,
    DatasetRef,
    Evaluation,
    InitFrom,
    Phase,
    PipelineSpec,
    RayOptions,
    Selection,
    StopRule,
    TuneSettings,
    UnknownPhase,
    Videos,
    sweep_label,
)
from mprl.spec.vocabulary import (
    BUDGET_UNITS,
    DATASET_QUALITIES,
    ITERATION_SETTINGS,
    PARADIGM_UNITS,
    RESERVED_SETTINGS,
)

__all__ = [
    "BUDGET_UNITS", "DATASET_QUALITIES", "ITERATION_SETTINGS", "PARADIGM_UNITS", "RESERVED_SETTINGS",
    "Budget", "DatasetBuild", "DatasetRef", "Evaluation", "InitFrom", "Phase", "PipelineSpec", "RayOptions",
    "Selection", "StopRule", "TuneSettings", "UnknownPhase", "Videos", "load_pipeline", "parse_pipeline", "sweep_label",
]
