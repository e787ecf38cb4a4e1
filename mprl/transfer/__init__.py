"""Parameter transfer between algorithms: roles, the compatibility checker and the model loader.

- `roles`: what each parameter of a module does (actor trunk/head, critics, value function,
  targets, normaliser), for our TD3-family modules and RLlib's SAC/CQL/IQL/PPO/BC modules;
- `checker`: the per-parameter plan and report (`check`);
- `loader`: applies a report to a live module (`apply`, `transfer_into_learner`);
- `snapshots`: weights + roles from a checkpoint, a module or an algorithm config;
- `cli`: `mprl transfer check`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mprl.transfer.checker import TransferOptions, TransferReport

# Re-exports, imported on first use so that `mprl --help` does not pay for torch and RLlib.
_EXPORTS = {
    "ADAPTERS": "checker", "Entry": "checker", "TransferOptions": "checker", "TransferReport": "checker", "check": "checker",
    "apply": "loader", "transfer_into_learner": "loader",
    "ModuleRoles": "roles", "Net": "roles", "describe_module": "roles",
    "Snapshot": "snapshots", "snapshot_from_checkpoint": "snapshots", "snapshot_from_config": "snapshots", "snapshot_from_module": "snapshots",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"mprl.transfer.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'mprl.transfer' has no attribute {name!r}")


def check_checkpoint(checkpoint: str | Path, config: Any, env: str | None = None, algorithm: str | None = None, options: TransferOptions | None = None) -> TransferReport:
    """The report for loading `checkpoint` into the module `config` builds on `env` (nothing is trained)."""
    from mprl.transfer.checker import TransferOptions, check
    from mprl.transfer.snapshots import snapshot_from_checkpoint, snapshot_from_config

    source = snapshot_from_checkpoint(checkpoint)
    target = snapshot_from_config(config, env=env, algorithm=algorithm)
    return check(source, target, options or TransferOptions.from_config(config))


def preflight(checkpoint: str | Path, config: Any, algorithm: str, report_path: str | Path | None = None) -> TransferReport:
    """Check a phase's transfer before its trials start; write the report; raise if impossible."""
    from mprl.errors import TransferError

    report = check_checkpoint(checkpoint, config, algorithm=algorithm)
    if report_path is not None:
        path = Path(report_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    if not report.possible:
        raise TransferError.from_report(report)
    return report


def preflight_ensemble(checkpoints: list[str | Path], config: Any, algorithm: str, labels: list[str | None] | None = None,
                       report_path: str | Path | None = None) -> dict[str, Any]:
    """`preflight` for `init_from: {..., as: ensemble}`: checkpoint k into member k of the module
    `config` builds (mprl.transfer.loader.check_members); writes the combined report; raises
    TransferError (with it) when the members are incompatible."""
    from mprl.errors import TransferError
    from mprl.transfer.checker import TransferOptions
    from mprl.transfer.loader import check_members
    from mprl.transfer.snapshots import module_from_config, snapshot_from_checkpoint

    sources = [snapshot_from_checkpoint(c) for c in checkpoints]
    module = module_from_config(config)
    report, _ = check_members(sources, module, TransferOptions.from_config(config), [str(c) for c in checkpoints], labels, algorithm,
                              getattr(config, "normalize_actions", None))
    report["target"]["env"] = config.env
    if report_path is not None:
        path = Path(report_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str))
    if not report["possible"]:
        raise TransferError.from_report(report)
    return report


def one_line(report: TransferReport | dict[str, Any]) -> str:
    d = report if isinstance(report, dict) else report.to_dict()
    if not d["possible"]:
        return "transfer impossible: " + "; ".join(d["problems"])
    s = d["summary"]
    return (
        f"transfer: {s['copied']} copied, {s['adapted']} adapted, {s['synced']} synced, {s['kept']} kept, "
        f"{s['initialised']} left initialised, {s['skipped']} source tensors unused; policy {d['policy']}"
    )


def format_report(report: TransferReport | dict[str, Any], parameters: bool = True) -> str:
    """A readable table: roles, then (optionally) one row per target parameter."""
    d = report if isinstance(report, dict) else report.to_dict()
    src, tgt = d["source"], d["target"]
    lines = [
        f"source: {src.get('checkpoint') or src.get('module_class')}",
        f"        {src.get('algorithm_class') or src.get('algorithm') or ''} {src.get('family')}  obs {src.get('observation_shape')}  act {src.get('action_shape')}  env {src.get('env') or '-'}",
        f"target: {tgt.get('algorithm') or ''} {tgt.get('family')} ({tgt.get('module_class')})",
        f"        obs {tgt.get('observation_shape')}  act {tgt.get('action_shape')}  env {tgt.get('env') or '-'}",
        "",
    ]
    if not d["possible"]:
        lines += ["TRANSFER IMPOSSIBLE:", *[f"  - {p}" for p in d["problems"]]]
        return "\n".join(lines)
    rows = [("role", "from", "status", "detail")] + [(r["role"], r["source"] or "-", r["status"], r["detail"]) for r in d["roles"]]
    lines += _table(rows)
    if parameters:
        lines.append("")
        prow = [("target parameter", "shape", "action", "source / reason")]
        for e in d["entries"]:
            how = e["source"] or ""
            if e["adapter"]:
                how = f"{how} [{e['adapter']}]".strip()
            if e["action"] in ("initialised", "kept", "synced"):
                how = f"{how} {e['detail']}".strip()
            prow.append((e["target"], "×".join(map(str, e["shape"])) or "-", e["action"], how))
        lines += _table(prow)
        if d["skipped_detail"]:
            lines += ["", "source parameters not used:"]
            lines += [f"  {s['source']} ({'×'.join(map(str, s['shape']))}): {s['reason']}" for s in d["skipped_detail"]]
    lines += ["", f"policy: {d['policy']}    optimiser: {d['optimizer']}"]
    lines += [f"note: {n}" for n in d["notes"]]
    lines.append(one_line(d))
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [min(60, max(len(str(r[i])) for r in rows)) for i in range(len(rows[0]) - 1)]
    out = []
    for j, r in enumerate(rows):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + str(r[-1]))
        if j == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return out


__all__ = [
    "ADAPTERS", "Entry", "ModuleRoles", "Net", "Snapshot", "TransferOptions", "TransferReport", "apply", "check",
    "check_checkpoint", "describe_module", "format_report", "one_line", "preflight", "preflight_ensemble", "snapshot_from_checkpoint",
    "snapshot_from_config", "snapshot_from_module", "transfer_into_learner",
]
