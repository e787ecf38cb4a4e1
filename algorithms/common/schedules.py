"""Schedules for weights that move during training (OPT's κ, the online decay of a regulariser)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearSchedule:
    """start → end linearly over `steps`, then constant; steps = 0 means constant `end`."""

    start: float
    end: float
    steps: int

    def __call__(self, t: float) -> float:
        if self.steps <= 0:
            return self.end
        frac = min(max(t / self.steps, 0.0), 1.0)
        return self.start + frac * (self.end - self.start)


def decayed(weight: float, t: float, horizon: float | None, end: float = 0.0) -> float:
    """weight · max(end, 1 − t / T): a weight that decays linearly over T env steps to the floor
    `end` (a fraction of `weight`), then stays; T None: constant. The one rule behind every
    online decay of a regulariser (SPOT's λ cooling, `regularize_to_init_steps`, `bc_cool`,
    `cql_alpha_cool`), so they read the same."""
    if horizon is None:
        return weight
    return weight * max(end, 1.0 - t / horizon) if horizon > 0 else weight * end
