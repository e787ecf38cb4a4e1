"""The pipeline: running a multi-phase pipeline as a chain of Ray Tune experiments.

Modules, each importing only the ones above it in this list:

- `phases`: phase settings (a phase's RLlib config) and results (`PhaseResult`, `RunResult`);
- `reports`: the sweep and branch tables a phase writes;
- `scheduler`: the phase scheduler, the detached Ray actor that owns a run (Tune per node,
  selection, stop rules, lineage recording, videos);
- `driver`: validation, starting and following a run, stop and resume (`mprl run`/`resume`).

`run_pipeline` and `resume_run` are the entry points; they are imported lazily so that
`import mprl.pipeline` stays cheap (no Ray, no Tune).
"""

from __future__ import annotations

from typing import Any

__all__ = ["resume_run", "run_pipeline"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mprl.pipeline import driver

        return getattr(driver, name)
    raise AttributeError(f"module 'mprl.pipeline' has no attribute {name!r}")
