"""Tune searcher wrappers (imported only when a search runs: this module imports Ray Tune)."""

from __future__ import annotations

from typing import Any

from ray.tune.search import Repeater
from ray.tune.search.repeater import TRIAL_INDEX


class SeedRepeater(Repeater):
    """Tune's Repeater with each repeat of a suggested point run under one of the phase's seeds;
    the searcher is told the mean score over the seeds. A searched hand-over point becomes the
    trial's `init_checkpoint` here (`handover`: a mprl.search.HandoverLookup). Module-level, so
    that Tune can pickle the state of a search it must resume."""

    def __init__(self, searcher: Any, seeds: list[int], handover: Any = None) -> None:
        super().__init__(searcher, repeat=len(seeds), set_index=True)
        self.seeds = list(seeds)
        self.handover = handover

    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            config["seed"] = self.seeds[config.pop(TRIAL_INDEX)]
            point = config.get("sweep_point")
            if self.handover is not None and isinstance(point, dict) and "handover" in point:
                config["sweep_point"] = {**point, "init_checkpoint": self.handover.path(point["handover"])}
        return config
