"""The lineage store: one embedded SQLite database per run, in the run's folder.

During a run the phase scheduler actor is its writer: the Serve app and `mprl video` hand it
their records while it lives (`mprl.lineage.writer`), and write themselves only when it does
not. Every write is one short `BEGIN IMMEDIATE` transaction (the write lock is taken up front,
so two writers queue on SQLite's busy timeout instead of failing with "database is locked"),
and every thread has its own connection (a connection shared across threads interleaves
their transactions). Readers (`mprl lineage`, `mprl curves`, the Serve app) open it read-only.
Every write is idempotent on a natural key, so a resumed run re-records nothing twice; a
checkpoint folder that Tune rewrites after a resume is re-recorded with its new scores.

Nodes of the lineage tree are *phase runs*: one per phase and per checkpoint that seeds it
(a phase seeded from three checkpoints of the previous phase is three nodes, `phase.b0..b2`).
A node has one parent (`nodes.parent_checkpoint_id`), except a node started from K checkpoints
at once (`init_from: {..., as: ensemble}`): its K parents, member k from checkpoint k, are rows of
`node_parents`, and `parent_checkpoint_id` is member 0. `LineageStore.parents()` is every parent
edge of every node, either way (a lineage written before `node_parents` reads as one parent each).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mprl.errors import MprlError
from mprl.storage import StorageNotFound, cache_root, download, exists, fs_path, is_uri, join, list_dirs
from mprl.axes import AXES

LINEAGE_FILE = "lineage.sqlite"
SCHEMA_VERSION = 3  # 2: nodes.regime_json (the regime diagnosis of a warm-started phase); 3: node_parents

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    spec_json TEXT NOT NULL, spec_hash TEXT NOT NULL, storage_path TEXT NOT NULL,
    code_version TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, phase TEXT NOT NULL, ordinal INTEGER NOT NULL,
    branch TEXT, parent_checkpoint_id TEXT, algorithm TEXT NOT NULL, paradigm TEXT NOT NULL,
    env TEXT NOT NULL, dataset TEXT, budget_unit TEXT NOT NULL, budget_value INTEGER NOT NULL,
    axis TEXT NOT NULL, config_hash TEXT, experiment_path TEXT, status TEXT NOT NULL, error TEXT,
    started_at REAL, ended_at REAL, result_json TEXT, regime_json TEXT);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY, node_id TEXT NOT NULL, seed INTEGER, sweep_label TEXT,
    status TEXT, error TEXT, path TEXT, config_json TEXT);
CREATE TABLE IF NOT EXISTS checkpoints (
    checkpoint_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, node_id TEXT NOT NULL, trial_id TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE, parent_checkpoint_id TEXT, phase TEXT NOT NULL, algorithm TEXT NOT NULL,
    paradigm TEXT NOT NULL, env TEXT NOT NULL, dataset TEXT, config_hash TEXT, code_version TEXT,
    iteration INTEGER, num_updates INTEGER, num_env_steps INTEGER, evaluation_return REAL,
    normalized_score REAL, metrics_json TEXT, selected INTEGER NOT NULL DEFAULT 0, selection TEXT,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    trial_id TEXT NOT NULL, iteration INTEGER NOT NULL, node_id TEXT NOT NULL,
    num_updates INTEGER, num_env_steps INTEGER, evaluation_return REAL, normalized_score REAL,
    time_total_s REAL, data_json TEXT, PRIMARY KEY (trial_id, iteration));
CREATE TABLE IF NOT EXISTS transfers (
    node_id TEXT PRIMARY KEY, source_checkpoint_id TEXT, source_path TEXT, target_algorithm TEXT,
    summary TEXT, report_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    video_id TEXT PRIMARY KEY, checkpoint_id TEXT NOT NULL, path TEXT NOT NULL, env TEXT,
    steps INTEGER, episode_return REAL, seconds REAL, source TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id TEXT PRIMARY KEY, node_id TEXT NOT NULL, source_json TEXT NOT NULL, take TEXT,
    transitions INTEGER, episodes INTEGER, held_out_dataset TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS selections (
    node_id TEXT PRIMARY KEY, validation TEXT NOT NULL, scores_json TEXT NOT NULL,
    chosen_checkpoint_id TEXT, env_steps INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS node_parents (
    node_id TEXT NOT NULL, member INTEGER NOT NULL, checkpoint_id TEXT NOT NULL, label TEXT,
    PRIMARY KEY (node_id, member));
CREATE INDEX IF NOT EXISTS metrics_node ON metrics(node_id);
CREATE INDEX IF NOT EXISTS checkpoints_node ON checkpoints(node_id);
"""



class LineageError(MprlError):
    """A run or a record the user named is not in the lineage."""


def short_hash(*parts: Any, n: int = 10) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:n]


def config_hash(config: dict[str, Any]) -> str:
    return short_hash(json.dumps(config, sort_keys=True, default=str), n=12)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """mprl's version plus the git commit (and '+dirty') of the working tree, when there is one."""
    from mprl import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    return f"{__version__}+{sha}{'.dirty' if dirty else ''}" if sha else __version__


def checkpoint_id(run_id: str, rel_path: str) -> str:
    """Stable across resumes and machines: the run and the checkpoint's path inside the run."""
    return "ck-" + short_hash(run_id, rel_path)


def stored_path(run_dir: str | os.PathLike, stored: str, root: str | None = None) -> Path | str:
    """A path as the lineage stores it, made usable: a local path under `run_dir`, or a URI
    under `root` for a run in remote storage. Needs no open database."""
    if is_uri(stored):
        return stored
    if root and is_uri(root):
        return join(root, stored)
    p = Path(stored)
    return p if p.is_absolute() else Path(run_dir) / p


# Filesystems where SQLite's WAL (shared memory) is unsafe: another host would read stale pages.
_NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "ceph", "9p", "glusterfs", "beegfs")


def journal_mode(folder: Path, mounts: list[list[str]] | None = None) -> str:
    """WAL on a local disk; the rollback journal on a network filesystem that other nodes read.
    `mounts`: [mount point, filesystem type] rows, by default this machine's /proc/mounts."""
    if mounts is None:
        try:
            mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
        except OSError:
            return "WAL"
    target = str(folder.resolve())
    inside = [(mnt, fstype) for mnt, fstype in mounts if target == mnt or target.startswith(mnt.rstrip("/") + "/")]
    fstype = max(inside, key=lambda m: len(m[0]))[1] if inside else ""
    return "DELETE" if fstype in _NETWORK_FS or fstype.startswith("fuse.") else "WAL"


class LineageStore:
    """One run's lineage. Open with ``LineageStore(run_dir)``; ``readonly=True`` for readers.

    For a run in remote storage, `run_dir` is a local copy (the scheduler's staging folder, or a
    reader's download) and `root` the run's URI, against which stored paths resolve.
    """

    def __init__(self, run_dir: str | os.PathLike, readonly: bool = False, root: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.root = root if root and is_uri(root) else None
        self.path = self.run_dir / LINEAGE_FILE
        self.readonly = readonly
        self._local = threading.local()  # one connection per thread
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        if readonly:
            if not self.path.exists():
                raise LineageError(f"No lineage at {self.path}: is {self.run_dir} an mprl run folder?")
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            db = self.db
            db.execute(f"PRAGMA journal_mode={journal_mode(self.run_dir)}")
            db.executescript(SCHEMA)  # IF NOT EXISTS: safe for any number of openers
            with self.transaction() as tx:
                tx.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                _migrate(tx)

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.readonly:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)  # closed by close(), from any thread
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    def close(self) -> None:
        with self._opened_lock:
            conns, self._opened = self._opened, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> LineageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing, with the write lock taken at BEGIN: a failure leaves no half-written
        record, and a second writer waits (busy timeout) rather than failing mid-transaction."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def snapshot(self, dest: Path) -> Path:
        """A consistent copy of the database (rollback journal, so it opens read-only anywhere)."""
        tmp = dest.with_name(f".{dest.name}.tmp")
        out = sqlite3.connect(tmp)
        try:
            self.db.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")
        finally:
            out.close()
        os.replace(tmp, dest)
        return dest

    def rel(self, path: str | os.PathLike) -> str:
        """A path as stored: relative to the run folder when inside it (the folder may move)."""
        if self.root:  # Tune names remote files by their bucket path, without the scheme
            p, base = fs_path(str(path)), fs_path(self.root)
            return p[len(base) + 1:] if p.startswith(base + "/") else str(path)
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.run_dir.resolve()))
        except ValueError:
            return str(path)

    def abs(self, stored: str) -> Path | str:
        return stored_path(self.run_dir, stored, self.root)

    # ---- writes (the scheduler actor)
    def create_run(self, run_id: str, name: str, spec: dict[str, Any], storage_path: str) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                # A resumed run keeps its row; a run continued with an added phase (the web workbench)
                # records its extended spec, so that a later `mprl resume` runs that phase too.
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(run_id) DO UPDATE SET spec_json=excluded.spec_json, spec_hash=excluded.spec_hash",
                (run_id, name, "created", None, json.dumps(spec), config_hash(spec), storage_path, code_version(), now, now),
            )

    def set_run_status(self, status: str, error: str | None = None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status=?, error=?, updated_at=?", (status, error, time.time()))

    def upsert_node(self, node: dict[str, Any]) -> None:
        """Insert a phase run, or update its status/result fields if it exists (`regime_json`: its
        regime diagnosis, written with the node, so no node is recorded started without it).
        `parents`: a node with several parents (an ensemble), [(checkpoint id, label)] with member k
        at index k, written with the node too (they replace any recorded before)."""
        cols = ["node_id", "run_id", "phase", "ordinal", "branch", "parent_checkpoint_id", "algorithm", "paradigm", "env",
                "dataset", "budget_unit", "budget_value", "axis", "config_hash", "experiment_path", "status", "error",
                "started_at", "ended_at", "result_json", "regime_json"]
        row = {c: node.get(c) for c in cols}
        row["axis"] = row["axis"] or AXES[row["budget_unit"]]
        updates = ", ".join(f"{c}=COALESCE(excluded.{c}, {c})" for c in cols[1:])
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO nodes ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                f"ON CONFLICT(node_id) DO UPDATE SET {updates}",
                [row[c] for c in cols],
            )
            if node.get("parents"):
                db.execute("DELETE FROM node_parents WHERE node_id=?", (node["node_id"],))
                db.executemany("INSERT INTO node_parents VALUES (?,?,?,?)",
                               [(node["node_id"], k, cid, label) for k, (cid, label) in enumerate(node["parents"])])

    def set_node_status(self, node_id: str, status: str, error: str | None = None, result: dict | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE nodes SET status=?, error=?, ended_at=?, result_json=COALESCE(?, result_json) WHERE node_id=?",
                (status, error, time.time() if status in ("succeeded", "failed") else None,
                 json.dumps(result, default=str) if result is not None else None, node_id),
            )

    def record_trial(self, trial_id: str, node_id: str, seed: int | None, sweep_label: str | None, status: str,
                     path: str | None, config: dict | None = None, error: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO trials VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(trial_id) DO UPDATE SET "
                "status=excluded.status, error=excluded.error, path=COALESCE(excluded.path, path)",
                (trial_id, node_id, seed, sweep_label, status, error, self.rel(path) if path else None,
                 json.dumps(config, default=str) if config is not None else None),
            )

    def record_metrics(self, trial_id: str, node_id: str, rows: Sequence[dict[str, Any]]) -> None:
        """Per-iteration results of one trial (both axes). Re-recording an iteration replaces it."""
        keep = lambda r: {k: v for k, v in r.items() if isinstance(v, (int, float, str, bool)) or v is None}  # noqa: E731
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?,?,?,?,?,?,?,?,?)",
                [(trial_id, int(r["training_iteration"]), node_id, r.get("num_updates_lifetime"), r.get("num_env_steps_lifetime"),
                  r.get("evaluation_return"), r.get("normalized_score"), r.get("time_total_s"), json.dumps(keep(r), default=str))
                 for r in rows],
            )

    def record_checkpoint(self, *, run_id: str, node: dict[str, Any], trial_id: str, path: str, metrics: dict[str, Any]) -> str:
        """Record a checkpoint, or re-record it: Tune rewrites a checkpoint folder when it
        re-runs iterations after a resume (its experiment state lagged behind the trial), and the
        record must then describe the new files: new scores, and its videos (of the old weights)
        dropped."""
        rel = self.rel(path)
        cid = checkpoint_id(run_id, rel)
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
        row = (metrics.get("training_iteration"), metrics.get("num_updates_lifetime"), metrics.get("num_env_steps_lifetime"),
               metrics.get("evaluation_return"), metrics.get("normalized_score"))
        with self.transaction() as db:
            old = db.execute("SELECT iteration, num_updates, num_env_steps, evaluation_return, normalized_score, created_at FROM checkpoints "
                             "WHERE checkpoint_id=?", (cid,)).fetchone()
            if old is None:
                db.execute(
                    "INSERT INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,NULL,?)",
                    (cid, run_id, node["node_id"], trial_id, rel, node.get("parent_checkpoint_id"), node["phase"], node["algorithm"],
                     node["paradigm"], node["env"], node.get("dataset"), node.get("config_hash"), code_version(), *row,
                     json.dumps(scalars), time.time()),
                )
            elif tuple(old)[:5] != row:  # the folder was rewritten: the record follows the files
                db.execute(
                    "UPDATE checkpoints SET trial_id=?, iteration=?, num_updates=?, num_env_steps=?, evaluation_return=?, normalized_score=?, "
                    "metrics_json=?, code_version=?, created_at=?, selected=0, selection=NULL WHERE checkpoint_id=?",
                    (trial_id, *row, json.dumps(scalars), code_version(), time.time(), cid),
                )
                db.execute("DELETE FROM videos WHERE checkpoint_id=?", (cid,))
        return cid

    def mark_selected(self, checkpoint_id_: str, selection: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE checkpoints SET selected=1, selection=? WHERE checkpoint_id=?", (selection, checkpoint_id_))

    def delete_checkpoint(self, checkpoint_id_: str) -> None:
        """A checkpoint Tune deleted (checkpoint_num_to_keep) leaves the lineage, with its videos."""
        with self.transaction() as db:
            db.execute("DELETE FROM videos WHERE checkpoint_id=?", (checkpoint_id_,))
            db.execute("DELETE FROM checkpoints WHERE checkpoint_id=? AND selected=0", (checkpoint_id_,))

    def record_transfer(self, node_id: str, source_checkpoint_id: str | None, source_path: str, target_algorithm: str,
                        summary: str, report: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO transfers VALUES (?,?,?,?,?,?)",
                       (node_id, source_checkpoint_id, source_path, target_algorithm, summary, json.dumps(report, default=str)))

    def record_video(self, checkpoint_id_: str, path: str, *, env: str | None = None, steps: int | None = None,
                     episode_return: float | None = None, seconds: float | None = None, source: str = "training") -> str:
        rel = self.rel(path)
        vid = "vid-" + short_hash(checkpoint_id_, rel)
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO videos VALUES (?,?,?,?,?,?,?,?,?)",
                       (vid, checkpoint_id_, rel, env, steps, episode_return, seconds, source, time.time()))
        return vid

    def record_dataset(self, dataset_id: str, node_id: str, source: dict[str, Any]) -> None:
        """A dataset built from this run's own experience (`dataset: {from: ...}`) and its source."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO datasets VALUES (?,?,?,?,?,?,?,?)",
                       (dataset_id, node_id, json.dumps(source, default=str), source.get("take"), source.get("transitions"),
                        source.get("episodes"), source.get("held_out_dataset"), time.time()))

    def record_selection(self, node_id: str, validation: str, scores: list[dict[str, Any]], chosen: str | None, env_steps: int) -> None:
        """A validated choice of the checkpoint that starts `node_id` (`init_from: {best_of: ...}`)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO selections VALUES (?,?,?,?,?,?)",
                       (node_id, validation, json.dumps(scores, default=str), chosen, int(env_steps), time.time()))

    # ---- reads
    def datasets(self) -> list[dict[str, Any]]:
        return self._optional("SELECT * FROM datasets ORDER BY created_at")

    def selections(self) -> list[dict[str, Any]]:
        return self._optional("SELECT * FROM selections ORDER BY created_at")

    def _optional(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a table that lineages written before it was added lack (read-only: no table)."""
        try:
            return self._all(sql)
        except sqlite3.OperationalError:
            return []

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(sql, args)]

    def run(self) -> dict[str, Any]:
        rows = self._all("SELECT * FROM runs")
        if not rows:
            raise LineageError(f"The lineage at {self.path} has no run record (the run was never started).")
        return rows[0]

    def nodes(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM nodes ORDER BY ordinal, node_id")

    def node(self, node_id: str) -> dict[str, Any] | None:
        rows = self._all("SELECT * FROM nodes WHERE node_id=?", (node_id,))
        return rows[0] if rows else None

    def parents(self, node_id: str | None = None) -> list[dict[str, Any]]:
        """Parent edges {node_id, member, checkpoint_id, label}, by node then member: an ensemble's K
        rows of `node_parents`, else the node's one `parent_checkpoint_id` (member 0, no label)."""
        many: dict[str, list[dict[str, Any]]] = {}
        for r in self._optional("SELECT * FROM node_parents ORDER BY node_id, member"):  # none in an older lineage
            many.setdefault(r["node_id"], []).append(r)
        out = []
        for n in ([self.node(node_id)] if node_id is not None else self.nodes()):
            if n is None:
                continue
            out += many.get(n["node_id"]) or ([{"node_id": n["node_id"], "member": 0, "checkpoint_id": n["parent_checkpoint_id"], "label": None}]
                                               if n["parent_checkpoint_id"] else [])
        return out

    def trials(self, node_id: str | None = None) -> list[dict[str, Any]]:
        if node_id is None:
            return self._all("SELECT * FROM trials ORDER BY node_id, trial_id")
        return self._all("SELECT * FROM trials WHERE node_id=? ORDER BY trial_id", (node_id,))

    def checkpoints(self, node_id: str | None = None, selected_only: bool = False) -> list[dict[str, Any]]:
        where, args = [], []
        if node_id is not None:
            where.append("node_id=?")
            args.append(node_id)
        if selected_only:
            where.append("selected=1")
        sql = "SELECT * FROM checkpoints" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY node_id, trial_id, iteration"
        return self._all(sql, args)

    def checkpoint(self, checkpoint_id_: str) -> dict[str, Any] | None:
        rows = self._all("SELECT * FROM checkpoints WHERE checkpoint_id=?", (checkpoint_id_,))
        return rows[0] if rows else None

    def metrics(self, node_id: str | None = None, trial_id: str | None = None) -> list[dict[str, Any]]:
        if trial_id is not None:
            return self._all("SELECT * FROM metrics WHERE trial_id=? ORDER BY iteration", (trial_id,))
        if node_id is not None:
            return self._all("SELECT * FROM metrics WHERE node_id=? ORDER BY trial_id, iteration", (node_id,))
        return self._all("SELECT * FROM metrics ORDER BY node_id, trial_id, iteration")

    def transfers(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM transfers ORDER BY node_id")

    def videos(self, checkpoint_id_: str | None = None) -> list[dict[str, Any]]:
        if checkpoint_id_ is None:
            return self._all("SELECT * FROM videos ORDER BY created_at")
        return self._all("SELECT * FROM videos WHERE checkpoint_id=? ORDER BY created_at", (checkpoint_id_,))


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a lineage written by an older mprl to SCHEMA_VERSION, inside the opener's write
    transaction (two openers cannot both add a column). New tables come from SCHEMA's
    IF NOT EXISTS; new columns of existing tables are added here. Readers of an old lineage
    (read-only: no migration) see rows without the new keys."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(nodes)")}
    if "regime_json" not in columns:
        db.execute("ALTER TABLE nodes ADD COLUMN regime_json TEXT")
    db.execute("UPDATE meta SET value=? WHERE key='schema_version' AND CAST(value AS INTEGER) < ?", (str(SCHEMA_VERSION), SCHEMA_VERSION))


def open_lineage(location: str | os.PathLike) -> LineageStore:
    """A run's store, read-only, from its folder or URI (a remote lineage is downloaded fresh)."""
    if not is_uri(location):
        return LineageStore(location, readonly=True)
    uri = str(location)
    local = cache_root() / "lineage" / short_hash(uri, n=16)
    try:
        download(join(uri, LINEAGE_FILE), local / LINEAGE_FILE)
    except StorageNotFound:
        raise LineageError(f"No lineage at {join(uri, LINEAGE_FILE)}: is {uri} an mprl run?") from None
    return LineageStore(local, readonly=True, root=uri)


def find_run(run: str, storage_path: str | None = None) -> Path | str:
    """A run's location from a run id (looked up under `storage_path`, default ./mprl_results),
    a run folder, or a run URI."""
    if is_uri(run):
        if exists(join(run, LINEAGE_FILE)):
            return run
    elif (Path(run) / LINEAGE_FILE).exists():
        return Path(run)
    root = storage_path or "./mprl_results"
    if is_uri(root):
        if exists(join(root, run, LINEAGE_FILE)):
            return join(root, run)
        known = list_dirs(root)
    else:
        if (Path(root) / run / LINEAGE_FILE).exists():
            return Path(root) / run
        known = [r["run_id"] for r in list_runs(root)] if Path(root).exists() else []
        root = Path(root).as_posix() if Path(root).is_absolute() else "./" + Path(root).as_posix()
    hint = f" Runs under {root}: {', '.join(known[-5:])}" if known else f" No runs under {root}."
    raise LineageError(f"No run {run!r}: give a run id with --storage-path, or the path of a run folder.{hint}")


def is_checkpoint_id(ref: str) -> bool:
    """Whether `ref` reads as a lineage checkpoint id (`ck-` and hex), not a path."""
    return bool(re.fullmatch(r"ck-[0-9a-f]{6,32}", ref or ""))


def find_checkpoint(ref: str, storage_path: str | None = None) -> tuple[str, str | None, str | None]:
    """A checkpoint from a folder/URI (returned as is) or a lineage id `ck-…` looked up in the runs
    under `storage_path` (default ./mprl_results): (path or URI, run folder, id)."""
    if not is_checkpoint_id(ref) or (not is_uri(ref) and Path(ref).exists()):
        return ref, None, None
    root = storage_path or "./mprl_results"
    runs = list_runs(root) if is_uri(root) or Path(root).exists() else []
    for r in runs:
        try:
            with open_lineage(r["run_dir"]) as store:
                row = store.checkpoint(ref)
        except (LineageError, sqlite3.Error):
            continue
        if row is not None:
            return str(stored_path(r["run_dir"], row["path"], root=str(r["run_dir"]))), str(r["run_dir"]), ref
    where = f"the {len(runs)} run(s) under {root}" if runs else f"{root} (no runs there)"
    raise LineageError(f"No checkpoint {ref!r} in {where}. Give the storage path of the run it belongs to "
                       f"(--storage-path, or storage_path in the YAML), or the checkpoint's folder; `mprl lineage show RUN --paths` lists each id's folder.")


def find_checkpoint_by_path(storage_root: str | os.PathLike, path: str | os.PathLike) -> str | None:
    """The id of the checkpoint stored at `path` in one of the local runs under `storage_root`."""
    target = Path(path).resolve()
    for r in list_runs(storage_root):
        try:
            with LineageStore(r["run_dir"], readonly=True) as store:
                for c in store.checkpoints():
                    if Path(stored_path(r["run_dir"], c["path"])).resolve() == target:
                        return c["checkpoint_id"]
        except (LineageError, sqlite3.Error):
            continue
    return None


def list_runs(storage_root: str | os.PathLike) -> list[dict[str, Any]]:
    """Run records of every run folder directly under `storage_root`, oldest first."""
    runs = []
    for name in list_dirs(storage_root):
        if name.startswith("."):
            continue  # an import being written (mprl.imports), or not mprl's
        location = join(storage_root, name)
        try:
            if not is_uri(location) and not (Path(location) / LINEAGE_FILE).exists():
                continue
            with open_lineage(location) as store:
                runs.append({**store.run(), "run_dir": str(location)})
        except (LineageError, sqlite3.Error):
            continue  # a folder being created, or not a run
    return sorted(runs, key=lambda r: r["created_at"])
