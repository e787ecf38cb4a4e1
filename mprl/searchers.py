"""Tune searcher wrappers (imported only when a search runs: this module imports Ray Tune)."""

from __future__ import annotations

from typing import Any

from ray.tune.search import Repeater
from ray.tune.search.repeater import TRIAL_INDEX


class SeedRepeater(Repeater):
    """Tune's Repeater with each repeat of a suggested point run under one of the phase's seeds;
    the searcher is told the mean score over the seeds. Module-level, so that Tune can pickle
    the state of a search it must resume."""

    def __init__(self, searcher: Any, seeds: list[int]) -> None:
        super().__init__(searcher, repeat=len(seeds), set_index=True)
        self.seeds = list(seeds)

    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            config["seed"] = self.seeds[config.pop(TRIAL_INDEX)]
        return config
