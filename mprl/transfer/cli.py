"""`mprl transfer check SOURCE_CHECKPOINT --to ALGORITHM [--env ENV] [--config key=value ...] [--json]`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import yaml

from mprl.errors import MprlError


def parse_settings(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MprlError(f"--config {item!r}: expected key=value, e.g. --config hidden=[64,64]")
        out[key.strip()] = yaml.safe_load(value)
    return out


def cmd_check(args: argparse.Namespace) -> int:
    from mprl.catalogue import get_algorithm
    from mprl.lineage.store import find_checkpoint
    from mprl.transfer import check, format_report
    from mprl.transfer.checker import TransferOptions
    from mprl.transfer.snapshots import snapshot_from_checkpoint, snapshot_from_config

    logging.getLogger("ray.rllib").setLevel(logging.ERROR)  # RLlib's deprecation notices on every module build
    entry = get_algorithm(args.to)
    path, _, _ = find_checkpoint(args.checkpoint, args.storage_path)
    source = snapshot_from_checkpoint(path)
    env = args.env or source.meta.get("env")
    if not env:
        raise MprlError("The checkpoint does not name its environment: pass --env (a Gymnasium id such as 'Hopper-v5').")
    cfg = entry.new_config().environment(env)
    fields = entry.override_fields()
    for key, value in parse_settings(args.config).items():
        if key not in fields:
            raise MprlError(f"--config {key}: unknown setting for {entry.name}. List them with `python -c \"from mprl.catalogue import get_algorithm; print(list(get_algorithm('{entry.name}').override_fields()))\"`.")
        setattr(cfg, key, value)
    target = snapshot_from_config(cfg, env=env, algorithm=entry.name)
    report = check(source, target, TransferOptions.from_config(cfg))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(format_report(report, parameters=not args.roles_only))
    if not report.possible:
        print(f"mprl: error: transfer impossible: {'; '.join(report.problems)}", file=sys.stderr)
        return 2
    return 0


def add_subparser(sub: Any) -> None:
    p = sub.add_parser("transfer", help="parameter transfer between algorithms (compatibility checker)")
    tsub = p.add_subparsers(dest="transfer", required=True)
    c = tsub.add_parser("check", help="what a checkpoint's parameters become in another algorithm's networks, and why")
    c.add_argument("checkpoint", help="an RLlib algorithm checkpoint folder, or a lineage id ck-… of a run under --storage-path")
    c.add_argument("--storage-path", default="./mprl_results", help="where runs are, for a ck-… id (default ./mprl_results)")
    c.add_argument("--to", required=True, metavar="ALGORITHM", help="target algorithm from the catalogue (`mprl algorithms`)")
    c.add_argument("--env", help="target environment (default: the checkpoint's)")
    c.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="a target setting, as in a phase's config: (YAML value); repeatable, e.g. --config hidden=[64,64] --config transfer_targets=sync")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("--roles-only", action="store_true", help="print the per-role summary without the per-parameter table")
    c.set_defaults(func=cmd_check)
