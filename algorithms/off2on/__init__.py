"""Off2On (Lee et al. 2022): balanced replay and a pessimistic Q-ensemble of K pre-trained CQL agents."""

from algorithms.registry import lazy_exports, register

register(
    "off2on", paradigms=("hybrid",), config="algorithms.off2on.off2on:Off2OnConfig",
    summary="Off2On: SAC over an ensemble of K agents (K offline CQL checkpoints, init_from: {phase, top_k: K, as: ensemble}); "
            "pessimistic ensemble-mean actor loss; balanced replay by density-ratio priorities over dataset ∪ online rows.",
    paper="Lee, Seo, Lee, Abbeel & Shin 2022, Offline-to-Online Reinforcement Learning via Balanced Replay and Pessimistic Q-Ensemble (CoRL)",
)
__getattr__ = lazy_exports(__name__, {"Off2On": "off2on", "Off2OnConfig": "off2on", "Off2OnSettings": "off2on",
                                      "Off2OnRLModule": "off2on_module", "Off2OnUpdates": "off2on_learner"})
