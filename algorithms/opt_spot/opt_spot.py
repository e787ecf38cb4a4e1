"""SPOT+OPT: OPT (Shin et al., ICML 2025) on the SPOT backbone (Wu et al. 2022), as an RLlib algorithm.

One hybrid phase, warm-started from a SPOT offline checkpoint (actor π_off, critics Q_off-pt,
the trained VAE behaviour model and its `vae_updates` count, the normaliser), runs OPT's
stages on its environment-step axis (`OnlinePretrainingMixin`, shared with TD3+OPT and IQL+OPT):
  1. collect  — N_τ transitions with the frozen π_off into B_on, no updates;
  2. pretrain — N_pretrain meta-adaptation updates of the new critic Q_on-pt (TD3 TD losses);
  3. finetune — SPOT's updates at `utd` per env step: both critics on TD3 targets, the actor on
                −q_kappa / mean|q_kappa| + λ_t · ELBO_loss(s, π(s)), κ on its schedule.
λ_t is SPOT's online decay λ · max(λ_end, 1 − t/T), t the phase's env steps (N_τ included),
T `lambd_cool_steps` or the phase's budget. A phase without a trained VAE (no SPOT warm start)
first trains it for `vae_iterations` updates on the dataset (results: `opt_stage` −1,
`vae_updates`), as a SPOT hybrid phase would; with a SPOT checkpoint that stage is skipped.

Where the paper leaves a choice, we chose: SPOT's fine-tuning defaults (UTD 1, actor lr 1e-4)
for everything but OPT's own settings; Q_on-pt's output layers get SPOT's critic init; the
|Q| normalisation of SPOT's actor loss is applied to the blend; balanced replay (OPT's) by default.
"""

from __future__ import annotations

from typing import Any, ClassVar

from algorithms.common.algorithm import OffPolicyAlgorithm
from algorithms.common.online_pretraining import OnlinePretrainingMixin, OnlinePretrainingSettings
from algorithms.common.settings import OffPolicySettings
from algorithms.spot.spot import SPOT, SPOTConfig, SPOTSettings


class OPTSPOTSettings(SPOTSettings, OnlinePretrainingSettings):
    """SPOT's settings (its fine-tuning defaults) plus OPT's stage, κ and meta-adaptation settings."""

    default_hybrid_replay: ClassVar[str] = "balanced"
    hybrid_replays: ClassVar[tuple[str, ...]] = ("balanced", "mixed", "online")
    #: `mprl bench learner`'s hybrid measurement times fine-tuning updates only: no VAE, collect or pre-train stage
    bench_settings: ClassVar[dict] = {"vae_iterations": 0, "n_tau": 0, "n_pretrain": 0}


class OPTSPOTConfig(SPOTConfig):
    settings: ClassVar[type[OffPolicySettings]] = OPTSPOTSettings
    module_class = "algorithms.opt_spot.opt_spot_module:OPTSPOTRLModule"
    updates_class_path = "algorithms.opt_spot.opt_spot_learner:OPTSPOTUpdates"
    default_paradigm = "hybrid"

    @classmethod
    def default_algo_class(cls) -> type:
        return OPTSPOT


class OPTSPOT(OnlinePretrainingMixin, OffPolicyAlgorithm):
    @classmethod
    def get_default_config(cls) -> OPTSPOTConfig:
        return OPTSPOTConfig()

    # SPOT's VAE counter and online λ decay, unchanged.
    learner_vae_updates = SPOT.learner_vae_updates
    current_lambda = SPOT.current_lambda

    def setup(self, config: Any) -> None:
        super().setup(config)  # a SPOT warm start brings the trained VAE
        self.vae_done = self.learner_vae_updates()
        if self.stage() == "vae":
            self.stage_starts = {}

    def stage(self) -> str:
        if getattr(self, "vae_done", self.config.vae_iterations) < self.config.vae_iterations:
            return "vae"
        return super().stage()

    def training_step(self) -> None:
        if self.stage() != "vae":
            return super().training_step()
        c = self.config
        self.mark_stage()
        n = min(c.vae_updates_per_iteration, c.vae_iterations - self.vae_done)
        self.log_losses([self.call_learner("run_updates", n, "vae_update")])
        self.num_updates += n
        self.vae_done = self.learner_vae_updates()
        return None

    def fragment_updates(self, k: int, step: str = "update", **params: Any) -> dict[str, float]:
        return super().fragment_updates(k, step, lambd=self.current_lambda(), **params)

    def step(self) -> dict[str, Any]:
        results = super().step()
        results["vae_updates"] = self.vae_done
        results["lambd"] = self.current_lambda()
        return results

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.vae_done = self.learner_vae_updates()
