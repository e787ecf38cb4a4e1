"""IQL (Kostrikov, Nair & Levine 2022): expectile V, Q from V(s′), advantage-weighted actor."""

from algorithms.registry import lazy_exports, register

register(
    "iql", paradigms=("offline", "online", "hybrid"), config="algorithms.iql.iql:IQLConfig",
    summary="IQL: expectile value V, TD Q on V(s′), actor on exp(β·(Q−V)) weighted log-likelihood; fine-tunes on one shared buffer.",
    paper="Kostrikov, Nair & Levine 2022, Offline Reinforcement Learning with Implicit Q-Learning",
    default_paradigm="offline",
)
__getattr__ = lazy_exports(__name__, {"IQL": "iql", "IQLConfig": "iql", "IQLSettings": "iql", "IQLRLModule": "iql_module", "IQLUpdates": "iql_learner"})
