"""Dataset ids (`mprl/<family>/<quality>-v0`), the local Minari folder and build commands."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from mprl.envs import NAMED_VARIANTS, env_slug, latest_env_id
from mprl.errors import MprlError

QUALITIES = ("random", "medium", "medium-replay", "expert")
NAMESPACE = "mprl"
DEFAULT_SIZE = 100_000  # transitions, in suggested build commands
DEFAULT_BUDGET = 300_000  # env steps of online training for medium / medium-replay / expert


@contextlib.contextmanager
def minari_root(path: str | os.PathLike) -> Iterator[None]:
    """MINARI_DATASETS_PATH → `path` for the block, restored after (the process may go on)."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def datasets_root() -> Path:
    """The local Minari folder, exactly as minari resolves it (`MINARI_DATASETS_PATH`, else
    `~/.minari/datasets`)."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env) if env is not None else Path(os.path.expanduser("~"), ".minari", "datasets")


def default_dataset_id(env_id: str, quality: str) -> str:
    """`mprl/hopper/medium-v0`; a deployment context gets its own: `mprl/hopper-real/medium-v0`."""
    return f"{NAMESPACE}/{env_slug(env_id)}/{quality}-v0"


def parse_dataset_id(dataset_id: str) -> tuple[str | None, str, int]:
    """Minari's (namespace, name, version) with an MprlError for malformed ids."""
    from minari.dataset.minari_dataset import parse_dataset_id as _parse

    try:
        return _parse(dataset_id)
    except (ValueError, TypeError):
        raise MprlError(
            f"Malformed dataset id '{dataset_id}': ids look like 'namespace/name-vN', "
            f"e.g. '{NAMESPACE}/hopper/medium-v0' or 'mujoco/hopper/expert-v0'."
        ) from None


def parse_mprl_id(dataset_id: str) -> tuple[str, str, int] | None:
    """`mprl/hopper/medium-replay-v0` → ('hopper', 'medium-replay', 0); None for other ids."""
    try:
        namespace, name, version = parse_dataset_id(dataset_id)
    except MprlError:
        return None
    if namespace is None or "/" not in namespace:
        return None
    head, family = namespace.split("/", 1)
    if head != NAMESPACE or "/" in family or name not in QUALITIES:
        return None
    return family, name, version


def build_command(dataset_id: str) -> str | None:
    """The `mprl datasets build …` command that builds an `mprl/…` id, or None."""
    parsed = parse_mprl_id(dataset_id)
    if parsed is None:
        return None
    family, quality, _ = parsed
    env_id = latest_env_id(family) or next((v for v in NAMED_VARIANTS if env_slug(v) == family), None)
    cmd = f"mprl datasets build {env_id or 'ENV_ID'} --quality {quality}"
    if quality != "medium-replay":
        cmd += f" --size {DEFAULT_SIZE}"
    if env_id is None or default_dataset_id(env_id, quality) != dataset_id:
        cmd += f" --id {dataset_id}"
    return cmd
