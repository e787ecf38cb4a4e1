"""The model loader: executes a checker report on a live module (and, if asked, its optimisers).

Order: the observation normaliser first (folds read the target's statistics after it is
set), then every copied or adapted parameter, then target copies synced from the
transferred online networks. Kept and initialised parameters are not touched. An impossible
transfer raises TransferError with the report before any weight changes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mprl.transfer.checker import Entry, TransferOptions, TransferReport, check
from mprl.transfer.snapshots import Snapshot, snapshot_from_module


def _norm_stats(state: dict[str, Any], keys: list[str] | None, dim: int) -> tuple[np.ndarray, np.ndarray]:
    if not keys:
        return np.zeros(dim), np.ones(dim)
    return np.asarray(state[keys[0]], dtype=np.float64), np.asarray(state[keys[1]], dtype=np.float64)


def adapted_value(e: Entry, src: dict[str, np.ndarray], own: dict[str, torch.Tensor]) -> np.ndarray:
    """The value an `adapted` entry writes, in float64."""
    a = e.args
    kind = "weight" if "weight" not in a else "bias"  # bias entries name their layer's weight
    if a.get("fill") is not None and e.source is None:  # a free log-std set to a constant
        return np.full(tuple(e.shape), float(a["fill"]))
    w = np.asarray(src[a.get("weight", e.source)], dtype=np.float64)
    value = np.asarray(src[e.source], dtype=np.float64)
    rows = a.get("rows")
    if rows:
        w, value = w[rows[0]: rows[1]], value[rows[0]: rows[1]]
    if "obs_dim" in a:  # first layer: re-express the inputs
        n = a["obs_dim"]
        own_np = {k: v.detach().cpu().numpy() for k, v in own.items() if k in (a.get("tgt_norm") or [])}
        mu_s, sd_s = _norm_stats(src, a.get("src_norm"), n)
        mu_t, sd_t = _norm_stats(own_np, a.get("tgt_norm"), n)
        # W n_s(x) with x = sd_t z + mu_t  →  W' z + Δb
        ratio, shift = sd_t / sd_s, (mu_t - mu_s) / sd_s
        w_obs = w[:, :n]
        if kind == "bias":
            value = value + w_obs @ shift
        else:
            value = value.copy()
            value[:, :n] = w_obs * ratio
        if a.get("act_cols"):
            lo, hi = a["act_cols"]
            scale, bias = np.asarray(a["act_scale"]), np.asarray(a["act_bias"])
            w_act = w[:, lo:hi]
            if a["act_conv"] == "env_to_normalized":  # source takes a_env = bias + scale·a
                if kind == "bias":
                    value = value + w_act @ bias
                else:
                    value[:, lo:hi] = w_act * scale
            else:  # source takes a_n = (a_env − bias) / scale
                if kind == "bias":
                    value = value - w_act @ (bias / scale)
                else:
                    value[:, lo:hi] = w_act / scale
    if a.get("dst_rows"):  # into part of a larger target tensor (a Gaussian head's mean rows)
        out = own[e.target].detach().cpu().numpy().astype(np.float64).copy()
        lo, hi = a["dst_rows"]
        out[lo:hi] = value
        if a.get("fill_rows"):
            flo, fhi = a["fill_rows"]
            fill = a["fill"]
            if fill == "zero":
                out[flo:fhi] = 0.0
            elif fill == "source_log_std":
                out[flo:fhi] = np.asarray(src[a["log_std_key"]], dtype=np.float64).reshape(-1)
            else:
                out[flo:fhi] = float(fill)
        value = out
    return value


def apply(report: TransferReport, source: Snapshot, module: Any) -> TransferReport:
    """Write the report's plan into `module` (an RL module or any nn.Module)."""
    from mprl.errors import TransferError

    if not report.possible:
        raise TransferError.from_report(report)
    own = module.state_dict()
    src = source.state
    first = [e for e in report.entries if e.role == "normalizer" and e.action == "copied"]
    rest = [e for e in report.entries if e.action in ("copied", "adapted") and e not in first]
    synced = [e for e in report.entries if e.action == "synced"]
    with torch.no_grad():
        for e in [*first, *rest]:
            t = own[e.target]
            if e.action == "copied":
                value = np.asarray(src[e.source])
            else:
                value = adapted_value(e, src, own)
            if tuple(np.shape(value)) != tuple(t.shape):
                raise AssertionError(f"transfer plan bug: {e.target} gets {np.shape(value)}, needs {tuple(t.shape)}")
            t.copy_(torch.as_tensor(value, dtype=t.dtype))
        for e in synced:
            own[e.target].copy_(own[e.args["from"]])
    return report


def carry_optimizer(learner: Any, checkpoint: str | Path | None, report: TransferReport) -> None:
    """Load the source learner's optimiser state, only into the same module class after an exact transfer."""
    import pickle

    if not report.options.get("optimizer"):
        return
    if checkpoint is None:
        report.optimizer = "not carried: no source checkpoint"
        return
    if report.source.get("module_class") != report.target.get("module_class"):
        report.optimizer = "not carried: the source and target modules differ"
        return
    if any(e.action not in ("copied", "kept") for e in report.entries):
        report.optimizer = "not carried: not every parameter was copied verbatim"
        return
    files = sorted((Path(checkpoint).expanduser() / "learner_group" / "learner").glob("state.*"))
    try:
        with open(files[0], "rb") as f:
            opt_state = pickle.load(f)["optimizer"]
        own = set(learner._named_optimizers)
        subset = {k: v for k, v in opt_state.items() if k in own}
        if set(subset) != own:
            report.optimizer = f"not carried: optimisers differ (source {sorted(opt_state)}, target {sorted(own)})"
            return
        learner._set_optimizer_state(subset)
        report.optimizer = f"carried ({', '.join(sorted(subset))})"
    except Exception as e:  # noqa: BLE001
        report.optimizer = f"not carried: {type(e).__name__}: {e}"


def transfer_into_learner(learner: Any, source: Snapshot, options: TransferOptions, checkpoint: str | None = None) -> dict[str, Any]:
    """Check and load `source` into a learner's default module; returns the report as a dict.

    An impossible transfer is returned unapplied (possible=False) for the caller to raise.
    """
    from ray.rllib.core import DEFAULT_MODULE_ID

    module = learner.module[DEFAULT_MODULE_ID]
    target = snapshot_from_module(module, normalize_actions=getattr(learner.config, "normalize_actions", None), algorithm=type(learner.config).__name__)
    if source.roles is None:  # a bare state dict: assume the target's own module class
        roles = dataclasses.replace(target.roles, shapes={k: tuple(np.shape(v)) for k, v in source.state.items()})
        source = Snapshot(roles, source.state, {**source.meta, "note": "no checkpoint metadata: described as the target's module class"})
    report = check(source, target, options)
    if report.possible:
        apply(report, source, module)
        carry_optimizer(learner, checkpoint, report)
    return report.to_dict()


def check_members(sources: list[Snapshot], module: Any, options: TransferOptions, checkpoints: list[str] | None = None,
                  labels: list[str | None] | None = None, algorithm: str | None = None,
                  normalize_actions: bool | None = None) -> tuple[dict[str, Any], list[TransferReport]]:
    """The plan for loading source k into member k of an ensemble module (`module.member(k)`,
    e.g. Off2On's): one checker report per member, and a combined report that says which member
    came from which checkpoint. Members are incompatible (possible=False) when the module is not an
    ensemble, the counts differ, a member's networks would be left initialised (another
    architecture), or the members' observation normalisers differ (another dataset)."""
    checkpoints = checkpoints or [s.meta.get("checkpoint") for s in sources]
    labels = labels or [None] * len(sources)
    problems: list[str] = []
    reports: list[TransferReport] = []
    members: list[dict[str, Any]] = []
    if not (getattr(module, "ENSEMBLE", False) and callable(getattr(module, "member", None))):
        problems.append(f"{type(module).__name__} is not an ensemble: `as: ensemble` needs an algorithm whose module has one member per "
                        "checkpoint (off2on); drop `as: ensemble` and `top_k` to start from one checkpoint")
    elif len(sources) != module.ensemble_size:
        problems.append(f"{len(sources)} checkpoints for an ensemble of {module.ensemble_size} members: set ensemble_size to {len(sources)} "
                        f"or init_from.top_k to {module.ensemble_size}")
    else:
        ref_norm = None
        for k, source in enumerate(sources):
            target = snapshot_from_module(module.member(k), normalize_actions=normalize_actions, algorithm=algorithm)
            report = check(source, target, options)
            reports.append(report)
            who = f"member {k} ({labels[k] or checkpoints[k]})"
            if not report.possible:
                problems += [f"{who}: {p}" for p in report.problems]
            left = report.names("initialised")
            if report.possible and left:
                problems.append(f"{who}: {len(left)} parameters would be left initialised ({', '.join(left[:3])}{', ...' if len(left) > 3 else ''}): "
                                "the checkpoint's networks are shaped differently from the ensemble's (match `hidden` and the critics' depth, "
                                "e.g. cql with q_n_hidden_layers: len(hidden))")
            norm = source.roles.normalizer if source.roles is not None else None
            stats = tuple(np.asarray(source.state[key], dtype=np.float64) for key in norm) if norm else None
            if k == 0:
                ref_norm = stats
            elif (stats is None) != (ref_norm is None) or (stats is not None and not all(np.allclose(a, b) for a, b in zip(stats, ref_norm))):
                problems.append(f"{who}: its observation normaliser differs from member 0's: the members were trained on different data; "
                                "start an ensemble from trials of one phase on one dataset")
            d = report.to_dict()
            members.append({"member": k, "checkpoint_id": labels[k], "checkpoint": checkpoints[k], "summary": d["summary"],
                            "policy": d["policy"], "report": d})
    summary: dict[str, int] = {}
    for m in members:
        for key, n in m["summary"].items():
            summary[key] = summary.get(key, 0) + n
    first = reports[0].to_dict() if reports else {"source": {}, "target": {}}
    combined = {
        "possible": not problems, "problems": problems, "ensemble": len(sources),
        "members": members,
        "source": {**first["source"], "checkpoint": ", ".join(str(lab or c) for lab, c in zip(labels, checkpoints))},
        "target": {**first["target"], "algorithm": algorithm or first["target"].get("algorithm")},
        "summary": summary or {a: 0 for a in ("copied", "adapted", "synced", "kept", "initialised", "skipped")},
        "policy": (f"ensemble of {len(members)}: " + "; ".join(f"member {m['member']} ← {m['checkpoint_id'] or m['checkpoint']} ({m['policy']})" for m in members))
                  if members else "not transferred",
        "optimizer": "not carried: an ensemble starts with fresh optimisers",
    }
    return combined, reports


def transfer_members_into_learner(learner: Any, sources: list[Snapshot], options: TransferOptions, checkpoints: list[str] | None = None) -> dict[str, Any]:
    """Check and load source k into member k of the learner's ensemble module; the combined report
    (unapplied, possible=False, when the members are incompatible)."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    module = learner.module[DEFAULT_MODULE_ID]
    combined, reports = check_members(sources, module, options, checkpoints, algorithm=type(learner.config).__name__,
                                      normalize_actions=getattr(learner.config, "normalize_actions", None))
    if combined["possible"]:
        for k, (report, source) in enumerate(zip(reports, sources)):
            apply(report, source, module.member(k))
    return combined
