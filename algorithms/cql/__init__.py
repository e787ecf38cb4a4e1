"""CQL (Kumar et al. 2020): conservative Q-learning on a SAC backbone, offline and continued online."""

from algorithms.registry import lazy_exports, register

register(
    "cql", paradigms=("offline", "online", "hybrid"), config="algorithms.cql.cql:CQLConfig", default_paradigm="offline",
    summary="CQL: SAC with a conservative critic penalty (logsumexp over sampled actions − Q on data, α_cql; optional Lagrange gap, max backup).",
    paper="Kumar, Zhou, Tucker & Levine 2020, Conservative Q-Learning for Offline Reinforcement Learning",
)
__getattr__ = lazy_exports(__name__, {"CQL": "cql", "CQLConfig": "cql", "CQLSettings": "cql", "CQLRLModule": "cql_module", "CQLUpdates": "cql_learner"})
