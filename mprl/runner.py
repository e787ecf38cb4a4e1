"""Old import path of the driver and the phase settings/results, kept for code written
against it: the code lives in `mprl.pipeline` (`driver`, `phases`, `reports`)."""

from mprl.pipeline.driver import (  # noqa: F401
    attach,
    ensure_dataset,
    find_scheduler,
    init_ray,
    new_run_id,
    resume_run,
    run_pipeline,
    start_scheduler,
    validate_inputs,
)
from mprl.pipeline.phases import PhaseResult, RunResult, phase_config, quiet_tune, reference_scores_for  # noqa: F401
from mprl.pipeline.reports import STAGE_MARKERS, write_branch_report, write_sweep_report  # noqa: F401
