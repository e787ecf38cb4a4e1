"""Where runs live: a local folder (a shared filesystem on a cluster) or a remote URI.

Remote URIs (``s3://bucket/prefix``, ``gs://…``, any scheme pyarrow.fs knows) go through
pyarrow.fs, as Ray Tune's own ``storage_path`` does: Tune writes trials and checkpoints there
directly; mprl keeps the files it writes itself (lineage, reports, videos) in a local staging
folder and uploads them. Readers download what they need into a local cache (immutable
checkpoints once; a run's lineage on every open, so it is current). Credentials and endpoints
come from the provider's usual environment (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, …).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from mprl.errors import CheckpointError, MprlError

URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class StorageError(MprlError):
    """A remote storage location cannot be read or written."""


class StorageNotFound(StorageError):
    """What a download asked for is not there."""


def is_uri(path: str | os.PathLike) -> bool:
    return bool(URI_RE.match(str(path)))


def join(base: str | os.PathLike, *parts: str) -> str:
    """`base/part/...` for folders and URIs alike (a URI's ?query stays at the end)."""
    base = str(base)
    if not is_uri(base):
        return os.path.join(base, *parts)
    head, _, query = base.partition("?")
    joined = "/".join([head.rstrip("/"), *(p.strip("/") for p in parts)])
    return f"{joined}?{query}" if query else joined


def dirname(path: str) -> str:
    """The folder (or URI prefix) that holds `path`."""
    if not is_uri(path):
        return os.path.dirname(str(path).rstrip("/"))
    head, _, query = path.partition("?")
    parent = head.rstrip("/").rsplit("/", 1)[0]
    return f"{parent}?{query}" if query else parent


def cache_root() -> Path:
    return Path(os.environ.get("MPRL_CACHE_DIR") or Path.home() / ".cache" / "mprl")


@functools.lru_cache(maxsize=16)
def _filesystem(prefix: str) -> Any:
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(prefix)[0]
    except Exception as e:  # noqa: BLE001 - unknown scheme, missing credentials, bad bucket name
        raise StorageError(f"Cannot open storage {prefix!r}: {e}. Check the URI's scheme and the provider's credentials (e.g. AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL).") from None


def resolve(uri: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) of a URI; filesystems are shared per bucket."""
    head, _, query = uri.partition("?")
    scheme, _, rest = head.partition("://")
    bucket = "/" if scheme.lower() == "file" else rest.split("/", 1)[0]  # the bucket, or hdfs's host:port
    return _filesystem(f"{scheme}://{bucket}" + (f"?{query}" if query else "")), fs_path(uri)


def fs_path(path: str) -> str:
    """A path as pyarrow and Tune name it: for object stores `bucket/key` (the URI without its
    scheme and query), for file:// and hdfs:// URIs the path after the host."""
    if not is_uri(path):
        return str(path)
    scheme, _, rest = path.partition("?")[0].partition("://")
    if scheme.lower() in ("file", "hdfs", "viewfs"):
        rest = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return rest.rstrip("/") or "/"


def _call(what: str, uri: str, fn: Any) -> Any:
    try:
        return fn()
    except MprlError:
        raise
    except Exception as e:  # noqa: BLE001 - network and permission errors of any provider
        raise StorageError(f"Cannot {what} {uri}: {e}") from None


def exists(path: str | os.PathLike) -> bool:
    import pyarrow.fs as pafs

    if not is_uri(path):
        return Path(path).exists()
    fs, p = resolve(str(path))
    return _call("read", str(path), lambda: fs.get_file_info(p).type != pafs.FileType.NotFound)


def list_names(path: str | os.PathLike, dirs_only: bool = False) -> list[str]:
    """Names of what is directly under `path` (nothing when it does not exist)."""
    import pyarrow.fs as pafs

    if not is_uri(path):
        folder = Path(path)
        return sorted(p.name for p in folder.iterdir() if p.is_dir() or not dirs_only) if folder.is_dir() else []
    fs, p = resolve(str(path))
    infos = _call("list", str(path), lambda: fs.get_file_info(pafs.FileSelector(p, allow_not_found=True)))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory or not dirs_only)


def list_dirs(path: str | os.PathLike) -> list[str]:
    return list_names(path, dirs_only=True)


def move(src: str, dest: str) -> None:
    """Rename a file or folder (on object stores: copy, then delete)."""
    if not is_uri(src):
        shutil.move(src, dest)
        return
    import pyarrow.fs as pafs

    fs, p = resolve(src)
    to = resolve(dest)[1]

    def copy_then_delete() -> None:  # S3 has no folders to rename: copy every object, then delete
        if fs.get_file_info(p).type == pafs.FileType.Directory:
            pafs.copy_files(p, to, source_filesystem=fs, destination_filesystem=fs)
            fs.delete_dir(p)
        else:
            fs.move(p, to)

    _call("move", src, copy_then_delete)


def upload(local: str | os.PathLike, uri: str) -> None:
    """Copy a local file or folder to `uri` (replacing what is there under the same names)."""
    import pyarrow.fs as pafs

    fs, p = resolve(uri)
    local = Path(local)
    if local.is_dir():
        _call("write", uri, lambda: pafs.copy_files(str(local), p, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs))
        return

    def put() -> None:
        _parent_dir(fs, p)
        with open(local, "rb") as src, fs.open_output_stream(p) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    _call("write", uri, put)


def download(uri: str, local: str | os.PathLike) -> Path:
    """Copy a remote file or folder to `local`, atomically: a reader never sees half of it."""
    import pyarrow.fs as pafs

    fs, p = resolve(uri)
    local = Path(local)
    info = _call("read", uri, lambda: fs.get_file_info(p))
    if info.type == pafs.FileType.NotFound:
        raise StorageNotFound(f"{uri} does not exist.")
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}")
    try:
        if info.type == pafs.FileType.Directory:
            tmp.mkdir()
            _call("read", uri, lambda: pafs.copy_files(p, str(tmp), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem()))
        else:
            _call("read", uri, lambda: _get(fs, p, tmp))
        if local.is_dir():
            shutil.rmtree(local)
        os.replace(tmp, local)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
    return local


def _parent_dir(fs: Any, p: str) -> None:
    """Object stores have no folders; file:// and hdfs:// need the parent before a write."""
    if fs.type_name not in ("s3", "gcs", "abfs"):
        fs.create_dir(p.rsplit("/", 1)[0], recursive=True)


def _get(fs: Any, p: str, dest: Path) -> None:
    with fs.open_input_stream(p) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def check_writable(uri: str) -> None:
    """Write and delete a marker under `uri`: a missing bucket, a wrong endpoint or missing
    credentials fail here, before any run starts."""
    fs, p = resolve(uri)
    marker = f"{p}/.mprl-write-check-{uuid.uuid4().hex[:8]}"

    def probe() -> None:
        _parent_dir(fs, marker)
        with fs.open_output_stream(marker) as f:
            f.write(b"ok")
        fs.delete_file(marker)

    try:
        probe()
    except Exception as e:  # noqa: BLE001 - provider errors differ; the message says which
        raise StorageError(f"storage_path {uri!r} is not writable: {e}. Check that the bucket exists and that this machine "
                           "and every node of the cluster have credentials for it (e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
                           "or AWS_ENDPOINT_URL for an S3-compatible store).") from None


def local_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder on this machine: local paths as given, remote ones downloaded once
    into the cache (checkpoints never change after Tune writes them)."""
    if not is_uri(path):
        return Path(path).expanduser()
    dest = cache_root() / "checkpoints" / hashlib.sha1(str(path).encode()).hexdigest()[:16] / Path(fs_path(str(path))).name
    if not dest.exists():
        try:
            download(str(path), dest)
        except StorageNotFound:
            raise CheckpointError(f"Checkpoint '{path}' does not exist. Pass the URI of an mprl/RLlib algorithm checkpoint folder.") from None
    return dest
