"""The algorithm catalogue: names users write in YAML → RLlib algorithm configs.

It reads `algorithms.registry`; an algorithm appears here by registering in its own sub-package.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

from algorithms.registry import AlgorithmInfo, discover
from mprl.errors import MprlError

Paradigm = Literal["offline", "online", "hybrid"]


@dataclass(frozen=True)
class AlgorithmEntry:
    info: AlgorithmInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def paradigms(self) -> tuple[str, ...]:
        return self.info.paradigms

    @property
    def paradigm(self) -> str:
        """The paradigm a phase gets when it writes no `paradigm:`."""
        return self.info.default_paradigm

    @property
    def description(self) -> str:
        return self.info.summary

    @property
    def paper(self) -> str:
        return self.info.paper

    @property
    def config_path(self) -> str:
        return self.info.config

    def needs_dataset(self, paradigm: str | None = None) -> bool:
        return (paradigm or self.paradigm) != "online"

    def config_class(self) -> type:
        return self.info.config_class()

    def new_config(self) -> Any:
        return self.config_class()()

    @property
    def settings(self) -> type:
        """The algorithm's typed settings model (algorithms.common.settings)."""
        return self.config_class().settings

    def override_fields(self) -> dict[str, object]:
        """The algorithm settings a phase's ``config:`` may set, with defaults."""
        return {k: f.default for k, f in self.settings.model_fields.items()}


# The sub-packages' `__init__`s only register (no torch, no RLlib), so this is cheap.
CATALOGUE: dict[str, AlgorithmEntry] = {name: AlgorithmEntry(info) for name, info in discover().items()}


def algorithm_names() -> list[str]:
    return sorted(CATALOGUE)


def get_algorithm(name: str) -> AlgorithmEntry:
    try:
        return CATALOGUE[name]
    except KeyError:
        close = difflib.get_close_matches(name, CATALOGUE, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise MprlError(
            f"Unknown algorithm '{name}'.{hint} Known algorithms: {', '.join(algorithm_names())}."
        ) from None
