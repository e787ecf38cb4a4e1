"""`mprl lineage show RUN`, `mprl lineage export RUN --format json|dot [-o FILE]`, `mprl curves RUN [-o OUT_DIR]`.

RUN is a run id (looked up under --storage-path, a folder or a URI such as s3://bucket/runs),
the path of a run folder, or a run's URI. All three only read the run's lineage store, so they
work while the run is going and need no Ray. `mprl pull RUN --to DIR` copies a run from remote
storage to a local folder (for `mprl serve`, or to keep).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mprl.lineage.store import (
    LINEAGE_FILE,
    LineageError,
    LineageStore,
    find_run,
    open_lineage,
)

DEFAULT_STORAGE = "./mprl_results"


@contextmanager
def open_run(run: str, storage_path: str | None) -> Iterator[LineageStore]:
    """The run's store, read-only; a file that is not an SQLite lineage becomes a LineageError."""
    try:
        run_dir = find_run(run, storage_path)
    except LineageError:
        p = Path(run)
        if p.is_dir() and not (Path(storage_path or DEFAULT_STORAGE) / run / LINEAGE_FILE).exists():
            raise LineageError(f"{p} is not an mprl run folder: it has no {LINEAGE_FILE}. "
                               f"Run folders are <storage_path>/<run id>, e.g. {DEFAULT_STORAGE}/<run id>.") from None
        raise
    try:
        with open_lineage(run_dir) as store:
            yield store
    except sqlite3.DatabaseError as e:
        raise LineageError(f"Cannot read the lineage of {run_dir}: {e} (is {run_dir} an mprl run folder?)") from e


def cmd_show(args: argparse.Namespace) -> int:
    from mprl.lineage.render import tree_text

    with open_run(args.run, args.storage_path) as store:
        print(tree_text(store), end="")
        if args.paths:  # what a ck-… id stands for, for tools that want the folder
            print("\ncheckpoint folders:")
            for c in store.checkpoints():
                print(f"  {c['checkpoint_id']}  {c['node_id']}/{c['trial_id']} it {c['iteration']}  {store.abs(c['path'])}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mprl.lineage.render import export_dot, export_json

    with open_run(args.run, args.storage_path) as store:
        if args.format == "json":
            text = json.dumps(export_json(store, metrics=args.metrics), indent=2, default=str) + "\n"
        else:
            text = export_dot(store)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    else:
        print(text, end="")
    return 0


def cmd_curves(args: argparse.Namespace) -> int:
    from mprl.lineage.plots import write_curves

    with open_run(args.run, args.storage_path) as store:
        default = Path("mprl_curves") / store.run()["run_id"] if store.root else store.run_dir / "curves"
        paths = write_curves(store, args.output or default)
    for kind, path in paths.items():
        print(f"{kind:5s} {path}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from mprl.storage import download, is_uri

    location = find_run(args.run, args.storage_path)
    if not is_uri(location):
        raise LineageError(f"{location} is already a local run folder; `mprl pull` copies runs from remote storage (--storage-path s3://…).")
    with open_lineage(location) as store:
        run_id = store.run()["run_id"]
    dest = Path(args.to) / run_id
    print(f"pulling {location} → {dest} ...", flush=True)
    download(str(location), dest)
    print(f"{dest}: serve it with `mprl serve --storage-path {args.to}`")
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run id (a folder under --storage-path) or the path of a run folder")
    p.add_argument("--storage-path", default=DEFAULT_STORAGE, help=f"where run folders are: a folder or a URI such as s3://bucket/runs (default {DEFAULT_STORAGE})")


def add_subparser(sub: Any) -> None:
    lin = sub.add_parser("lineage", help="a run's lineage: phase runs, checkpoints, scores, transfers, videos")
    lsub = lin.add_subparsers(dest="lineage", required=True)
    show = lsub.add_parser("show", help="print the lineage tree with algorithm, paradigm, budget and score per phase run")
    _run_args(show)
    show.add_argument("--paths", action="store_true", help="also list each checkpoint id with its folder")
    show.set_defaults(func=cmd_show)
    exp = lsub.add_parser("export", help="the whole lineage as JSON, or as a Graphviz DOT graph")
    _run_args(exp)
    exp.add_argument("--format", choices=["json", "dot"], default="json", help="json (every record) or dot (the graph)")
    exp.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    exp.add_argument("--metrics", action="store_true", help="json: include every per-iteration metrics row")
    exp.set_defaults(func=cmd_export)

    cur = sub.add_parser("curves", help="learning-curve plots (PNG, HTML): env steps for online phases, updates for offline ones")
    _run_args(cur)
    cur.add_argument("-o", "--output", metavar="OUT_DIR", help="folder for curves.png/.html/.json (default <run folder>/curves)")
    cur.set_defaults(func=cmd_curves)

    pull = sub.add_parser("pull", help="copy a run (lineage, checkpoints, videos, reports) from remote storage to a local folder")
    _run_args(pull)
    pull.add_argument("--to", default=DEFAULT_STORAGE, metavar="DIR", help=f"local storage folder; the run lands in DIR/<run id> (default {DEFAULT_STORAGE})")
    pull.set_defaults(func=cmd_pull)
