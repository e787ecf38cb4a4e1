"""Read an RL module's weights straight out of an RLlib algorithm checkpoint folder."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ray.rllib.core import DEFAULT_MODULE_ID

MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / DEFAULT_MODULE_ID


def read_module_state(checkpoint: str | Path) -> dict[str, Any]:
    """All module entries, targets included (RLModule.from_checkpoint would drop them)."""
    from mprl.errors import CheckpointError
    from mprl.storage import local_checkpoint

    root = local_checkpoint(checkpoint)  # a remote (s3://, gs://) checkpoint is downloaded once
    if not root.exists():
        raise CheckpointError(f"Checkpoint '{checkpoint}' does not exist. Pass the folder of an mprl/RLlib algorithm checkpoint (it contains '{MODULE_SUBDIR}').")
    folder = root / MODULE_SUBDIR
    files = sorted(folder.glob("module_state.*")) if folder.is_dir() else []
    if not files:
        raise CheckpointError(f"'{checkpoint}' is not an RLlib algorithm checkpoint: no module state under '{MODULE_SUBDIR}'. Pass a checkpoint folder written by an mprl phase.")
    try:
        with open(files[0], "rb") as f:
            state = pickle.load(f)
    except Exception as e:  # truncated or foreign files
        raise CheckpointError(f"Checkpoint '{checkpoint}' is corrupt: cannot read '{files[0].name}' ({type(e).__name__}: {e}). Re-run the phase that wrote it, or pick another checkpoint.") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"Checkpoint '{checkpoint}' is corrupt: module state is a {type(state).__name__}, not a mapping of weights.")
    return state


def use_dataset_root(config: Any) -> None:
    """Point this process's Minari lookups at the folder the phase was configured with."""
    import os

    if getattr(config, "dataset_root", None):
        os.environ["MINARI_DATASETS_PATH"] = config.dataset_root

