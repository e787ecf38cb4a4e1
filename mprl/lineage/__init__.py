"""Lineage: which checkpoint came from which, with metrics, transfers and videos (SQLite per run)."""

from mprl.lineage.store import (
    AXES,
    LINEAGE_FILE,
    LineageError,
    LineageStore,
    checkpoint_id,
    code_version,
    config_hash,
    find_run,
    list_runs,
    open_lineage,
)

__all__ = ["AXES", "LINEAGE_FILE", "LineageError", "LineageStore", "checkpoint_id", "code_version", "config_hash", "find_run", "list_runs", "open_lineage"]
