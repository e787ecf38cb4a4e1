"""Names and constants of the pipeline spec: paradigms, budget units, reserved settings."""

from __future__ import annotations

import re
from typing import Literal, get_args

from mprl.axes import BUDGET_UNITS, PARADIGM_UNITS
from mprl.axes import UNIT_WORDS as _UNIT_WORDS

__all__ = ["BUDGET_UNITS", "PARADIGM_UNITS", "_UNIT_WORDS"]  # re-exported for the spec's modules

Paradigm = Literal["offline", "online", "hybrid"]
BudgetUnit = Literal["updates", "env_steps"]
Quality = Literal["random", "medium", "medium-replay", "expert"]
Metric = Literal["normalized_score", "evaluation_return"]

DATASET_QUALITIES: tuple[str, ...] = get_args(Quality)

#: Algorithm settings a phase may not override under ``config:`` because a dedicated
#: spec field owns them (the runner sets them from that field).
RESERVED_SETTINGS: dict[str, str] = {
    "env": "the environment is set by the phase's `env:`",
    "seed": "seeds are set per trial from `seed:` and the phase's `tune.seeds:`",
    "dataset": "the dataset is set by the phase's `dataset:`",
    "dataset_root": "the dataset folder is MINARI_DATASETS_PATH where `mprl run` starts",
    "sweep_point": "list sweep points under the phase's `sweep:`",
    "init_checkpoint": "the starting checkpoint is set by the phase's `init_from:`",
    "init_checkpoints": "an ensemble's checkpoints are set by the phase's `init_from: {phase: PHASE, top_k: K, as: ensemble}`",
    "budget_updates": "the budget is set by the phase's `budget:`",
    "budget_env_steps": "the budget is set by the phase's `budget:`",
    "eval_episodes": "set it with the phase's `evaluation.episodes:`",
    "eval_seed": "set it with the phase's `evaluation.seed:`",
    "paradigm": "set the phase's `paradigm:`",
    "num_gpus_per_learner": "set it with the phase's `resources: {num_gpus_per_learner: N}`",
}
#: RLlib settings that mprl's learners do not read: refused, with the setting that does the job.
RLLIB_BYPASSED: dict[str, str] = {
    "lr": "mprl's learners have one learning rate per network (actor_lr, critic_lr, ...)",
    "grad_clip": "mprl's learners do not clip gradients",
    "num_epochs": "mprl's learners sample their own minibatches; the number of updates follows the budget and utd",
    "minibatch_size": "the minibatch is train_batch_size_per_learner",
    "training_intensity": "the update-to-data ratio is utd",
    "num_steps_sampled_before_learning_starts": "use learning_starts",
    "replay_buffer_config": "the replay lives in the learner: buffer_size, and replay for hybrid phases",
    "target_network_update_freq": "targets are Polyak-averaged every update: tau",
}

#: The per-iteration setting that one evaluation interval becomes, by budget unit.
ITERATION_SETTINGS = {"updates": "updates_per_iteration", "env_steps": "env_steps_per_iteration"}

#: Modules imported (if present) before checking environment ids, so that environments
#: registered by mprl itself (e.g. sim-to-real variants) are known to the registry.
ENV_REGISTRATION_MODULES: tuple[str, ...] = ("mprl.envs",)

_PIPELINE_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_PHASE_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
# Minari's DATASET_ID_RE with the version made mandatory (minari.load_dataset needs it).
_DATASET_ID_RE = re.compile(r"(?:(?P<namespace>[-_\w][-_\w/]*[-_\w]+)/)?(?P<dataset>[-_\w]+?)-v(?P<version>\d+)")
_HOST_PORT_RE = re.compile(r"(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}")
_MPRL_ERROR = "mprl"
_MAX_SEED = 2**32 - 1


