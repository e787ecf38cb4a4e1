"""The algorithm registry: each sub-package of `algorithms/` registers itself in its `__init__`.

`register(...)` records a name, the paradigms the algorithm supports, its RLlib config class
(as "module:Class", imported only when used, so `mprl --help` stays fast), a one-line summary
and its paper. `discover()` imports every sub-package once; the catalogue, the spec and
`mprl algorithms` read the result. Adding an algorithm touches only its own sub-package.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PARADIGMS = ("offline", "online", "hybrid")


@dataclass(frozen=True)
class AlgorithmInfo:
    name: str
    paradigms: tuple[str, ...]
    config: str  # "module:Class" of the AlgorithmConfig subclass
    summary: str
    paper: str
    default_paradigm: str

    def config_class(self) -> type:
        module, _, cls = self.config.partition(":")
        return getattr(importlib.import_module(module), cls)


_REGISTRY: dict[str, AlgorithmInfo] = {}
_discovered = False


def register(name: str, *, paradigms: tuple[str, ...], config: str, summary: str, paper: str, default_paradigm: str | None = None) -> None:
    bad = [p for p in paradigms if p not in PARADIGMS]
    if not paradigms or bad:
        raise ValueError(f"algorithm {name!r}: paradigms must be a non-empty subset of {PARADIGMS}, got {paradigms!r}")
    default = default_paradigm or paradigms[0]
    if default not in paradigms:
        raise ValueError(f"algorithm {name!r}: default paradigm {default!r} is not one of its paradigms {paradigms!r}")
    info = AlgorithmInfo(name, tuple(paradigms), config, summary, paper, default)
    if name in _REGISTRY and _REGISTRY[name] != info:
        raise ValueError(f"algorithm {name!r} is registered twice ({_REGISTRY[name].config} and {config})")
    _REGISTRY[name] = info


def discover() -> dict[str, AlgorithmInfo]:
    """Every registered algorithm (imports each `algorithms.<name>` package once)."""
    global _discovered
    if not _discovered:
        import algorithms

        for mod in pkgutil.iter_modules(algorithms.__path__):
            if mod.ispkg and mod.name != "common":
                importlib.import_module(f"algorithms.{mod.name}")
        _discovered = True
    return dict(sorted(_REGISTRY.items()))


def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `names` (attribute → submodule) on first use, so a
    sub-package's `__init__` can register without importing torch or RLlib."""

    def __getattr__(attr: str) -> Any:
        if attr in names:
            return getattr(importlib.import_module(f"{package}.{names[attr]}"), attr)
        raise AttributeError(f"module {package!r} has no attribute {attr!r}")

    return __getattr__
