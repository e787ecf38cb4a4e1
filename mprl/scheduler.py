"""Old import path of the phase scheduler, kept because Tune's experiment state of runs made
before the move pickled its callbacks under it (`mprl resume` of such a run unpickles them):
the code lives in `mprl.pipeline.scheduler`."""

from mprl.pipeline.scheduler import (  # noqa: F401
    LINEAGE_SYNC_S,
    NAMESPACE,
    LineageCallback,
    PhaseStopper,
    Scheduler,
    actor_name,
    select_checkpoints,
)
