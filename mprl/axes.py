"""The budget and axis vocabulary, in one place.

A paradigm's budget unit is also the axis its learning curves are drawn on: offline phases
count gradient updates, online and hybrid phases environment steps.
"""

from __future__ import annotations

#: paradigm → budget unit
PARADIGM_UNITS: dict[str, str] = {"offline": "updates", "online": "env_steps", "hybrid": "env_steps"}
BUDGET_UNITS: tuple[str, ...] = ("updates", "env_steps")
#: budget unit → words for people
UNIT_WORDS: dict[str, str] = {"updates": "gradient updates", "env_steps": "environment steps"}
#: budget unit → short words for progress lines and labels
UNIT_SHORT: dict[str, str] = {"updates": "updates", "env_steps": "env steps"}
#: budget unit → the lifetime counter in every training result
BUDGET_KEYS: dict[str, str] = {"updates": "num_updates_lifetime", "env_steps": "num_env_steps_lifetime"}
#: budget unit → the lineage's curve axis (a metrics column)
AXES: dict[str, str] = {"updates": "num_updates", "env_steps": "num_env_steps"}
#: curve axis → its budget unit
AXIS_UNITS: dict[str, str] = {axis: unit for unit, axis in AXES.items()}
