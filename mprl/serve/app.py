"""The Ray Serve application: a versioned JSON API for policies of the lineage, and the web page.

Two deployments, both with `num_cpus=0` so that they never hold CPUs Tune trials need:

- `PolicyService`, the FastAPI ingress: runs, policies, curves and the lineage graph from the
  lineage store; `act` on the policies it keeps loaded (an LRU of RL modules), with
  requests batched across clients by `serve.batch`; the page and its static files.
- `MediaWorker`: rollouts and video recording, CPU-heavy work kept out of the ingress's
  process so that `act` latency does not depend on a video being rendered.

Only checkpoints and videos registered in the lineage can be loaded: requests name ids
(`ck-…`, `vid-…`, run ids), which `Catalog` maps to the paths the lineage recorded; HTTP never
accepts a path. Checkpoints are pickles: serve only runs you trust.

Limits the server holds (`ServeSettings`): the request body's size, checked on its
Content-Length and while it is read, before it is parsed; environment ids, which must be
registered ids (a `module:Name` id would make Gymnasium import a module a client chose);
videos made on demand (per policy, identical requests reuse the same file), the video job
table and the renders running at once; catalogue rescans (off the event loop, at most one a
second); and, when bound to anything but loopback, a token on every request.
"""


import asyncio
import collections
import hmac
import inspect
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from ray import serve
from ray.serve.exceptions import RayServeException
from starlette.types import Receive, Scope, Send

from mprl import __version__
from mprl.errors import MprlError
from mprl.lineage.store import short_hash, stored_path
from mprl.serve.catalog import Catalog, clean, lineage_graph, policy_record
from mprl.serve.errors import ApiError, error_response, install_handlers, parse_json

logger = logging.getLogger("mprl.serve")

API = "/api/v1"
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html",
                "uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css", "uPlot.LICENSE.txt": "text/plain"}
UPLOT_VERSION = "1.6.32"  # vendored charting library (static/VENDORED.md)
MAX_BODY_BYTES = 8 * 1024 * 1024
LOG_CONFIG = {"enable_access_log": False, "log_level": "WARNING"}
ON_DEMAND_SOURCES = ("serve", "rollouts")  # videos the server made (training and `mprl video` ones are not capped)


@dataclass
class ServeSettings:
    """What `mprl serve` configures; limits make oversized requests a 413, not a stalled server."""

    storage_path: str = "./mprl_results"
    host: str = "127.0.0.1"
    port: int = 8000
    video_steps: int = 1000  # frames of an on-demand video (the page's checkpoint click)
    max_batch: int = 1024  # observations per `act` request
    max_episodes: int = 20  # episodes per `rollouts` request
    max_video_steps: int = 10_000
    policy_cache: int = 32  # RL modules kept loaded
    max_body_bytes: int = MAX_BODY_BYTES  # request bodies above this are refused unread (413)
    max_videos_per_policy: int = 16  # videos made on demand per policy (identical requests reuse theirs)
    max_render_jobs: int = 2  # videos (jobs and rollout videos) queued or rendering at once; more → 429
    max_video_jobs: int = 256  # video jobs remembered; the oldest finished ones are forgotten first
    token: str | None = None  # required on every request when set (always set off loopback: see `resolve_token`)
    batch_wait_s: float = 0.0  # `serve.batch` takes what is queued: no added latency for a lone client
    proxy_port: int | None = None  # Serve's proxy, with direct ingress (default port + 1)
    control_token: str | None = None  # required (in a header, never a cookie) by requests that change state: launch, stop, resume, build

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(clean(obj), separators=(",", ":")), status_code=status, media_type="application/json")


def _unknown_policy(policy_id: str) -> ApiError:
    return ApiError(404, "unknown_policy", f"No policy {policy_id!r} in the lineage. Policies are registered checkpoints, named by id ('ck-…'): list them with GET {API}/policies.")


def _int(data: dict[str, Any], key: str, default: int | None, lo: int, hi: int | None, code: str = "invalid_request") -> int | None:
    v = data.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ApiError(422, code, f"'{key}' must be an integer, got {json.dumps(v)}.")
    if v < lo or (hi is not None and v > hi):
        status = 413 if hi is not None and v > hi else 422
        raise ApiError(status, code, f"'{key}' is {v}; it must be between {lo} and {hi}." if hi is not None else f"'{key}' is {v}; it must be at least {lo}.")
    return v


def _object(data: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", f"The request body must be a JSON object, got {type(data).__name__}.")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(422, "invalid_request", f"Unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(allowed))}.")
    return data


def _env_arg(data: dict[str, Any]) -> str | None:
    """A registered environment id (or None): never a `module:Name` id, which would import a module."""
    from mprl.envs import registered_env_id

    env = data.get("env")
    if env is None:
        return None
    if not isinstance(env, str) or not env or len(env) > 200:
        raise ApiError(422, "invalid_request", f"'env' must be a Gymnasium environment id such as 'HalfCheetah-v5', got {json.dumps(env)}.")
    try:
        return registered_env_id(env)
    except MprlError as e:
        raise ApiError(422, "unknown_environment", str(e)) from None


def observations(data: Any, obs_shape: tuple[int, ...], max_batch: int, policy_id: str) -> tuple[np.ndarray, bool]:
    """`{"observation": [...]}` or `{"observations": [[...], ...]}` → float32 [B, *obs_shape], single?"""
    data = _object(data, {"observation", "observations"})
    if ("observation" in data) == ("observations" in data):
        raise ApiError(422, "invalid_request", "Send exactly one of 'observation' (one observation) or 'observations' (a list of them).")
    single = "observation" in data
    raw = data["observation"] if single else data["observations"]
    if not single:
        if not isinstance(raw, list) or not raw:
            raise ApiError(422, "invalid_observation", "'observations' must be a non-empty list of observations.")
        if len(raw) > max_batch:
            raise ApiError(413, "batch_too_large", f"A batch of {len(raw)} observations exceeds this server's limit of {max_batch}: split it into requests of at most {max_batch}.")
    try:
        obs = np.asarray(raw, dtype=np.float32)
    except (ValueError, TypeError):
        raise ApiError(422, "invalid_observation", f"The observation{'' if single else 's'} must be {'a list' if single else 'lists'} of numbers of shape {list(obs_shape)} (no strings, nulls or ragged lists).") from None
    got = obs.shape if single else obs.shape[1:]
    if tuple(got) != obs_shape:
        what = "observation has" if single else "observations have"
        raise ApiError(422, "wrong_observation_shape", f"The {what} shape {list(got)}, but policy {policy_id} expects {list(obs_shape)}. Send {'one list' if single else 'lists'} of {int(np.prod(obs_shape))} numbers.")
    finite = np.isfinite(obs)
    if not finite.all():
        bad = np.argwhere(~finite)[0].tolist()
        value = float(obs[tuple(bad)])
        name = "NaN" if np.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        raise ApiError(422, "non_finite_observation", f"The observation{'' if single else 's'} contain{'s' if single else ''} {name} at index {bad}: every value must be a finite number.")
    return (obs[None] if single else obs), single


class PolicyCache:
    """LRU of loaded policies by checkpoint id; a policy is loaded once however many requests wait for it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self.locks: dict[str, asyncio.Lock] = {}

    async def get(self, policy_id: str, path: Path) -> Any:
        policy = self.items.get(policy_id)
        if policy is not None:
            self.items.move_to_end(policy_id)
            return policy
        async with self.locks.setdefault(policy_id, asyncio.Lock()):
            if policy_id not in self.items:
                from mprl.serve.policy import load_policy

                self.items[policy_id] = await asyncio.to_thread(load_policy, path)
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
        return self.items[policy_id]


ACT_PREFIX, ACT_SUFFIX = f"{API}/policies/", "/act"
JSON_HEADERS = [(b"content-type", b"application/json")]
TOKEN_COOKIE = "mprl_token"


def act_policy_id(scope: Scope) -> str | None:
    """The policy id if `scope` is `POST /api/v1/policies/{policy_id}/act` (as FastAPI's route matches it), else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    if not (path.startswith(ACT_PREFIX) and path.endswith(ACT_SUFFIX)):
        return None
    policy_id = path[len(ACT_PREFIX):-len(ACT_SUFFIX)]
    return policy_id if policy_id and "/" not in policy_id else None  # '/' in it: FastAPI's 404, as before


def _too_large(size: int | str, limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"The request body is {size} bytes; the limit is {limit}. Send smaller batches.")


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, if it sent a valid one."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def limited_receive(receive: Receive, limit: int) -> Receive:
    """`receive` that raises a 413 ApiError as soon as the body read so far exceeds `limit`
    (for bodies sent without a Content-Length, or with a false one)."""
    seen = 0

    async def wrapped() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(f"more than {limit}", limit)
        return message

    return wrapped


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The whole request body from ASGI `receive`, refused (413) once it exceeds `limit`; None
    if the client disconnected first."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit}", limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _token_of(scope: Scope) -> str | None:
    """The token a request carries: `Authorization: Bearer …`, `X-Mprl-Token`, or the page's cookie."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].decode("latin-1").strip()
        if name == b"x-mprl-token":
            return value.decode("latin-1").strip()
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == TOKEN_COOKIE:
                    return val
    return None


def _query_token(scope: Scope) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


async def _send_json(send: Send, status: int, payload: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [*JSON_HEADERS, (b"content-length", b"%d" % len(payload)), *(extra or [])]})
    await send({"type": "http.response.body", "body": payload})


class MprlApp(FastAPI):
    """The FastAPI app, with `act` answered before FastAPI's middleware stack and router.

    One observation per request is the common `act` call, and for it the Python HTTP stack is
    the cost, not the policy: py-spy on the replica (16 clients, 2 cores) put ~30% of its CPU
    time in FastAPI/Starlette (middleware layers, route matching over every route, dependency
    solving, `Request`) against ~4% in the forward pass. So a `POST .../act` goes straight to
    `PolicyService.act_asgi`, which reads the body, answers through the same code as the
    FastAPI route (`PolicyService.act_body`, `serve.batch` included) and sends the same JSON
    bytes, errors included; every other request goes through FastAPI as usual. The FastAPI
    `act` route stays registered: it documents the endpoint (OpenAPI) and serves it whenever
    this shortcut is not in front (e.g. the app called without Serve).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            service = serve.get_replica_context().servable_object  # this replica's PolicyService
        except RayServeException:  # not inside a Serve replica: FastAPI's route answers
            service = None
        if service is not None and scope["type"] == "http":
            settings = service.settings
            if settings.token and not await self._authorized(scope, send, settings.token):
                return
            length = declared_length(scope)
            if length is not None and length > settings.max_body_bytes:  # refused before a byte of it is read
                e = _too_large(length, settings.max_body_bytes)
                await _send_json(send, e.status, error_response(e.status, e.code, e.message).body, [(b"connection", b"close")])
                return
            policy_id = act_policy_id(scope)
            if policy_id is not None:
                await service.act_asgi(policy_id, receive, send)
                return
            receive = limited_receive(receive, settings.max_body_bytes)
        await super().__call__(scope, receive, send)

    @staticmethod
    async def _authorized(scope: Scope, send: Send, token: str) -> bool:
        """Every request carries the token; the page gets it once as `/?token=…` (then a cookie)."""
        given = _token_of(scope)
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            return True
        query = _query_token(scope)
        if scope["path"] == "/" and query is not None and hmac.compare_digest(query.encode(), token.encode()):
            cookie = f"{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/".encode()
            # The page keeps the token from the fragment for its state-changing requests (a header).
            location = b"/#token=" + token.encode()
            await send({"type": "http.response.start", "status": 303, "headers": [(b"location", location), (b"set-cookie", cookie), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return False
        e = ApiError(401, "token_required", "This server needs its access token on every request: send `Authorization: Bearer TOKEN` "
                     "(or open the page once as /?token=TOKEN). `mprl serve` printed the token and the file that holds it.")
        await _send_json(send, e.status, error_response(e.status, e.code, e.message).body, [(b"www-authenticate", b"Bearer")])
        return False


app = MprlApp(title="mprl", version=__version__, docs_url=f"{API}/docs", openapi_url=f"{API}/openapi.json", redoc_url=None)
install_handlers(app)


class _FormRefused(Exception):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(fields)
        self.fields = fields


def cached_signature(func: Callable[..., Any]) -> Callable[..., Any]:
    """Compute `func`'s signature once: `serve.batch` calls `inspect.signature` on every request
    (to flatten the arguments), which showed as ~6% of the replica's CPU time under load;
    `inspect.signature` returns a function's `__signature__` as is when it is set."""
    func.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    return func


class JobTable:
    """Video jobs by id, at most `size` of them: the oldest finished jobs are forgotten first; a
    table full of unfinished jobs takes no new one (the render bound keeps that from happening)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self.items.get(job_id)

    def add(self, job: dict[str, Any]) -> bool:
        """Keep `job` (replacing one of the same id); False if the table is full of unfinished jobs."""
        self.items.pop(job["job_id"], None)
        while len(self.items) >= self.size:
            old = next((k for k, j in self.items.items() if j["state"] in ("done", "failed")), None)
            if old is None:
                return False
            del self.items[old]
        self.items[job["job_id"]] = job
        return True

    def __len__(self) -> int:
        return len(self.items)


def _busy(limit: int) -> dict[str, Any]:
    return {"refused": {"status": 429, "code": "render_busy", "message": f"{limit} video(s) are queued or rendering, this server's limit: retry in a while, or poll the jobs you started."}}


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=16, logging_config=LOG_CONFIG)
class MediaWorker:
    """Rollouts and videos, in worker threads; video jobs report progress while they run."""

    def __init__(self, settings: dict[str, Any]) -> None:
        import torch

        torch.set_num_threads(1)
        self.settings = ServeSettings(**settings)
        self.jobs = JobTable(self.settings.max_video_jobs)
        self.render = asyncio.Semaphore(1)  # one render at a time: it is CPU-bound anyway
        self.active = 0  # videos queued or rendering (≤ settings.max_render_jobs)
        self.policies = PolicyCache(8)

    def _refs(self, policy: Any, record: dict[str, Any], env_id: str) -> tuple[float, float] | None:
        """The phase's own reference returns when rolled out on its own env (family), else D4RL's."""
        from mprl.envs import env_family, reference_scores

        if policy.env and env_family(policy.env) == env_family(env_id):
            refs = policy.meta.get("reference_scores")
            if refs and len(refs) == 2 and None not in refs:
                return float(refs[0]), float(refs[1])
        return reference_scores(env_id)

    @staticmethod
    async def _register(req: dict[str, Any], path: Path, **fields: Any) -> str:
        """Record a video in its run's lineage through the run's one writer (its scheduler
        actor while it lives, else an immediate transaction of our own), off the event loop."""
        from mprl.lineage.writer import record_video

        vid, _ = await asyncio.to_thread(record_video, Path(req["run_dir"]), req.get("run_id"), req["policy_id"], path, **fields)
        return vid

    async def rollouts(self, req: dict[str, Any]) -> dict[str, Any]:
        from mprl.video import rollouts

        policy = await self.policies.get(req["policy_id"], Path(req["checkpoint"]))
        env_id = req["env"] or policy.env
        refs = self._refs(policy, req, env_id) if env_id else None
        video_path = Path(req["video_path"]) if req.get("video_path") else None
        if video_path is not None and self.active >= self.settings.max_render_jobs:
            return _busy(self.settings.max_render_jobs)
        try:
            if video_path is not None:
                self.active += 1
                try:
                    async with self.render:
                        out = await asyncio.to_thread(rollouts, policy, env_id, req["seeds"], max_steps=req["max_steps"], video_path=video_path, refs=refs)
                finally:
                    self.active -= 1
            else:
                out = await asyncio.to_thread(rollouts, policy, env_id, req["seeds"], max_steps=req["max_steps"], refs=refs)
        except MprlError as e:
            return {"error": {"status": 422, "code": "bad_environment", "message": str(e)}}
        if video_path is not None:
            out["video_id"] = await self._register(req, video_path, env=out["env"], steps=sum(out["lengths"]),
                                                   episode_return=out["returns"][0], seconds=out["seconds"], source="rollouts")
        return out

    async def start_video(self, req: dict[str, Any]) -> dict[str, Any]:
        """Start (or join) the job that records this video; returns its status."""
        job_id = req["job_id"]
        job = self.jobs.get(job_id)
        if job is not None and (job["state"] in ("queued", "running") or (job["state"] == "done" and Path(req["video_path"]).is_file())):
            return job  # an identical request joins the job, or reuses its video
        if self.active >= self.settings.max_render_jobs:
            return _busy(self.settings.max_render_jobs)
        job = {"job_id": job_id, "policy_id": req["policy_id"], "state": "queued", "frames": 0, "total": req["steps"],
               "video_id": None, "error": None, "started_at": time.time(), "seconds": None}
        if not self.jobs.add(job):
            return _busy(self.settings.max_render_jobs)
        self.active += 1
        asyncio.get_running_loop().create_task(self._record(job, req))
        return job

    async def _record(self, job: dict[str, Any], req: dict[str, Any]) -> None:
        from mprl.video import record_policy_video

        def progress(done: int, total: int) -> None:
            job["frames"], job["total"] = done, total

        try:
            policy = await self.policies.get(req["policy_id"], Path(req["checkpoint"]))
            async with self.render:
                job["state"] = "running"
                out = await asyncio.to_thread(record_policy_video, policy, req["video_path"], req["env"], steps=req["steps"],
                                              seed=req["seed"], progress=progress)
            job["video_id"] = await self._register(req, Path(out["path"]), env=out["env"], steps=out["steps"],
                                                   episode_return=out["episode_return"], seconds=out["seconds"], source="serve")
            job.update(state="done", seconds=time.time() - job["started_at"], episode_return=out["episode_return"])
        except Exception as e:  # noqa: BLE001 - reported to the client through the job's status
            logger.warning("video job %s failed: %s", job["job_id"], e)
            job.update(state="failed", error=str(e) if isinstance(e, MprlError) else f"{type(e).__name__}: {e}")
        finally:
            self.active -= 1

    async def job(self, job_id: str) -> dict[str, Any] | None:
        return self.jobs.get(job_id)

    async def stats(self) -> dict[str, int]:
        return {"video_jobs": len(self.jobs), "renders_active": self.active}


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=512, logging_config=LOG_CONFIG)
@serve.ingress(app)
class PolicyService:
    def __init__(self, settings: dict[str, Any], worker: Any) -> None:
        import torch

        torch.set_num_threads(1)  # small MLPs: threads only add contention with the env and the proxy
        self.settings = ServeSettings(**settings)
        self.catalog = Catalog(self.settings.storage_path)
        self.worker = worker
        self.policies = PolicyCache(self.settings.policy_cache)
        self._act_batch.set_batch_wait_timeout_s(self.settings.batch_wait_s)
        self.stats = {"act_requests": 0, "act_observations": 0, "act_batches": 0, "act_largest_batch": 0}
        self.rescanned_jobs: set[str] = set()
        self.launched: dict[str, dict[str, Any]] = {}  # run id → the scheduler this server started and follows
        from mprl.workbench import DatasetJobs

        self.dataset_jobs = DatasetJobs()

    # ---- helpers
    async def _find(self, kind: str, key: str) -> Any:
        """An id from the catalogue's index; a miss rescans (rate-limited) in a worker thread,
        never on the event loop that answers `act`."""
        found = self.catalog.cached(kind, key)
        if found is None and self.catalog.due():
            await asyncio.to_thread(self.catalog.rescan)
            found = self.catalog.cached(kind, key)
        return found

    async def _checkpoint(self, policy_id: str) -> tuple[Path, dict[str, Any]]:
        if not isinstance(policy_id, str) or not policy_id.startswith("ck-") or len(policy_id) > 64:
            raise _unknown_policy(policy_id)
        found = await self._find("checkpoints", policy_id)
        if found is None:
            raise _unknown_policy(policy_id)
        return found

    async def _policy(self, policy_id: str) -> Any:
        policy = self.policies.items.get(policy_id)
        if policy is not None:
            return policy
        run_dir, record = await self._checkpoint(policy_id)
        try:
            return await self.policies.get(policy_id, stored_path(run_dir, record["path"]))
        except MprlError as e:
            raise ApiError(409, "checkpoint_unloadable", f"Policy {policy_id} is registered but cannot be loaded: {e}") from None

    async def _run_dir(self, run_id: str) -> Path:
        run_dir = await self._find("runs", run_id)
        if run_dir is None:
            raise ApiError(404, "unknown_run", f"No run {run_id!r} under this server's storage path. List runs with GET {API}/runs.")
        return run_dir

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.0005)
    @cached_signature
    async def _act_batch(self, items: list[tuple[Any, np.ndarray]]) -> list[np.ndarray]:
        """One forward pass per policy for every request waiting now (Serve's batching)."""
        self.stats["act_batches"] += 1
        self.stats["act_largest_batch"] = max(self.stats["act_largest_batch"], len(items))
        by_policy: dict[int, list[int]] = {}
        for i, (policy, _) in enumerate(items):
            by_policy.setdefault(id(policy), []).append(i)
        out: list[np.ndarray] = [None] * len(items)  # type: ignore[list-item]
        for idx in by_policy.values():
            policy = items[idx[0]][0]
            obs = [items[i][1] for i in idx]
            actions = policy.act(obs[0] if len(obs) == 1 else np.concatenate(obs))
            start = 0
            for i, o in zip(idx, obs):
                out[i] = actions[start:start + len(o)]
                start += len(o)
        return out

    # ---- API
    # `act`: the hot path (see MprlApp)
    async def act_body(self, policy_id: str, body: bytes) -> bytes:
        """The JSON answer of `act` to a request body (raises ApiError); `serve.batch` joins concurrent calls."""
        policy = await self._policy(policy_id)
        if len(body) > self.settings.max_body_bytes:
            raise _too_large(len(body), self.settings.max_body_bytes)
        obs, single = observations(parse_json(body), policy.obs_shape, self.settings.max_batch, policy_id)
        self.stats["act_requests"] += 1
        self.stats["act_observations"] += len(obs)
        actions = await self._act_batch((policy, obs))
        out = {"policy_id": policy_id, "action": actions[0].tolist()} if single else {"policy_id": policy_id, "actions": actions.tolist()}
        if not np.isfinite(actions).all():  # not for bounded actors; JSON has no NaN
            out = clean(out)
        return json.dumps(out, separators=(",", ":")).encode()  # the usual case: no clean() walk

    async def act_asgi(self, policy_id: str, receive: Receive, send: Send) -> None:
        """`act` as a bare ASGI handler (see `MprlApp`): the same answers and errors as the route below."""
        try:
            body = await read_body(receive, self.settings.max_body_bytes)
            if body is None:
                return  # the client went away: nobody to answer
            status, payload = 200, await self.act_body(policy_id, body)
        except ApiError as e:
            status, payload = e.status, error_response(e.status, e.code, e.message).body
        except Exception as e:  # as install_handlers' catch-all: a JSON 500, and the server keeps serving
            logger.exception("unexpected error on POST %s%s%s", ACT_PREFIX, policy_id, ACT_SUFFIX)
            status, payload = 500, error_response(500, "internal_error", f"The server failed on this request ({type(e).__name__}: {e}). It keeps serving; report this with the request that caused it.").body
        await _send_json(send, status, payload)

    # Registered first on purpose: Serve looks up the route of every request (for its metrics) by
    # trying the app's routes in order: with the hot route first that is one match instead of ten.
    @app.post(f"{API}/policies/{{policy_id}}/act")
    async def act(self, policy_id: str, request: Request) -> Response:
        """Documents the endpoint; under Serve `MprlApp` answers it through `act_asgi` before routing."""
        return Response(await self.act_body(policy_id, await request.body()), media_type="application/json")

    @app.get(API)
    async def index(self) -> Response:
        s = self.settings
        return json_response({
            "service": "mprl", "api": "v1", "version": __version__,
            "limits": {"max_batch": s.max_batch, "max_episodes": s.max_episodes, "max_video_steps": s.max_video_steps,
                       "max_body_bytes": s.max_body_bytes, "max_videos_per_policy": s.max_videos_per_policy,
                       "max_render_jobs": s.max_render_jobs, "max_video_jobs": s.max_video_jobs},
            "token_required": bool(s.token),
            "video_steps": s.video_steps,
            "endpoints": [
                "GET /api/v1/health", "GET /api/v1/stats", "GET /api/v1/runs", "GET /api/v1/runs/{run_id}", "GET /api/v1/runs/{run_id}/curves",
                "GET /api/v1/runs/{run_id}/lineage", "GET /api/v1/policies[?run=RUN_ID]", "GET /api/v1/policies/{policy_id}",
                "POST /api/v1/policies/{policy_id}/act  {\"observation\": [...]} | {\"observations\": [[...], ...]}",
                "POST /api/v1/policies/{policy_id}/rollouts  {\"seeds\": [0, 1], \"env\": null, \"max_steps\": null, \"video\": false}",
                "POST /api/v1/policies/{policy_id}/videos  {\"steps\": 1000, \"seed\": 0, \"env\": null}",
                "GET /api/v1/videos/jobs/{job_id}", "GET /api/v1/videos/{video_id}", "GET /api/v1/videos/{video_id}/info",
            ],
        })

    @app.get(f"{API}/health")
    async def health(self) -> Response:
        return json_response({"status": "ok", "version": __version__, "storage_path": str(Path(self.settings.storage_path).resolve())})

    @app.get(f"{API}/stats")
    async def get_stats(self) -> Response:
        """Counters of this replica: `act` requests and the server-side batches they were served in."""
        media = await self.worker.stats.remote()
        return json_response({**self.stats, **media, "catalog_rescans": self.catalog.rescans, "policies_loaded": list(self.policies.items)})

    @app.get(f"{API}/runs")
    async def runs(self) -> Response:
        return json_response({"runs": await asyncio.to_thread(self.catalog.runs)})

    @app.get(f"{API}/runs/{{run_id}}")
    async def run(self, run_id: str) -> Response:
        from mprl.lineage import LineageStore

        run_dir = await self._run_dir(run_id)

        def read() -> dict[str, Any]:
            with LineageStore(run_dir, readonly=True) as store:
                run = store.run()
                videos: dict[str, list[str]] = {}
                for v in store.videos():
                    videos.setdefault(v["checkpoint_id"], []).append(v["video_id"])
                return {
                    "run": {k: v for k, v in run.items() if k not in ("spec_json", "storage_path")},
                    "spec": json.loads(run["spec_json"] or "{}"),
                    "phases": [{k: v for k, v in n.items() if k != "result_json"} for n in store.nodes()],
                    "trials": [{k: v for k, v in t.items() if k not in ("config_json", "path")} for t in store.trials()],
                    "policies": [policy_record(c, videos.get(c["checkpoint_id"], [])) for c in store.checkpoints()],
                    "transfers": [{k: v for k, v in t.items() if k not in ("report_json", "source_path")} for t in store.transfers()],
                }

        return json_response(await asyncio.to_thread(read))

    @app.get(f"{API}/runs/{{run_id}}/curves")
    async def curves(self, run_id: str) -> Response:
        from mprl.lineage import LineageStore
        from mprl.lineage.curves import curve_data
        from mprl.lineage.plots import panel_metric

        run_dir = await self._run_dir(run_id)

        def read() -> dict[str, Any]:
            with LineageStore(run_dir, readonly=True) as store:
                data = curve_data(store)
            for panel in data["panels"]:  # the quantity `mprl curves` plots: normalised score where every point has one
                panel["metric"] = panel_metric(panel)
            return data

        return json_response(await asyncio.to_thread(read))

    @app.get(f"{API}/runs/{{run_id}}/lineage")
    async def lineage(self, run_id: str) -> Response:
        from mprl.lineage import LineageStore

        run_dir = await self._run_dir(run_id)

        def read() -> dict[str, Any]:
            with LineageStore(run_dir, readonly=True) as store:
                return {"run_id": run_id, **lineage_graph(store)}

        return json_response(await asyncio.to_thread(read))

    @app.get(f"{API}/policies")
    async def list_policies(self, run: str | None = None) -> Response:
        if run is not None:
            await self._run_dir(run)
        return json_response({"policies": await asyncio.to_thread(self.catalog.policies, run)})

    @app.get(f"{API}/policies/{{policy_id}}")
    async def describe_policy(self, policy_id: str) -> Response:
        _, record = await self._checkpoint(policy_id)
        policy = await self._policy(policy_id)
        vids = [p["videos"] for p in await asyncio.to_thread(self.catalog.policies, record["run_id"]) if p["policy_id"] == policy_id]
        return json_response({**policy_record(record, vids[0] if vids else []), **policy.describe()})

    @app.post(f"{API}/policies/{{policy_id}}/rollouts")
    async def rollouts(self, policy_id: str, request: Request) -> Response:
        run_dir, record = await self._checkpoint(policy_id)
        s = self.settings
        body = await request.body()
        data = _object(parse_json(body) if body else {}, {"seeds", "episodes", "seed", "env", "max_steps", "video"})
        if "seeds" in data and ("episodes" in data or "seed" in data):
            raise ApiError(422, "invalid_request", "Give either 'seeds' (a list) or 'episodes' with an optional first 'seed', not both.")
        if "seeds" in data:
            seeds = data["seeds"]
            if not isinstance(seeds, list) or not seeds or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**32 for x in seeds):
                raise ApiError(422, "invalid_request", "'seeds' must be a non-empty list of integers in [0, 2^32).")
            if len(seeds) > s.max_episodes:
                raise ApiError(413, "too_many_episodes", f"{len(seeds)} episodes exceed this server's limit of {s.max_episodes} per request: split the seeds over several requests.")
        else:
            n = _int(data, "episodes", 1, 1, s.max_episodes, "too_many_episodes")
            first = _int(data, "seed", 0, 0, 2**32 - n - 1)
            seeds = list(range(first, first + n))
        max_steps = _int(data, "max_steps", None, 1, s.max_video_steps)
        video = data.get("video", False)
        if not isinstance(video, bool):
            raise ApiError(422, "invalid_request", f"'video' must be true or false, got {json.dumps(video)}.")
        env_id = _env_arg(data)
        await self._policy(policy_id)  # a 409 now rather than a failure in the worker
        path = stored_path(run_dir, record["path"])
        env_name = (env_id or record["env"]).replace("/", "_")
        video_path = None
        if video:  # one file per distinct request: a repeated request re-renders the same file
            video_path = run_dir / "videos" / f"{policy_id}-{env_name}-rollouts-{short_hash(seeds, max_steps)}.mp4"
            await self._check_video_cap(run_dir, policy_id, video_path)
        out = await self.worker.rollouts.remote({
            "policy_id": policy_id, "run_id": record["run_id"], "checkpoint": str(path), "run_dir": str(run_dir), "env": env_id,
            "seeds": seeds, "max_steps": max_steps, "video_path": str(video_path) if video_path else None,
        })
        for key in ("error", "refused"):
            if key in out:
                raise ApiError(out[key]["status"], out[key]["code"], out[key]["message"])
        out.pop("video_path", None)
        if out.get("video_id"):
            out["video_url"] = f"{API}/videos/{out['video_id']}"
        return json_response({"policy_id": policy_id, **out})

    @app.post(f"{API}/policies/{{policy_id}}/videos")
    async def make_video(self, policy_id: str, request: Request) -> Response:
        """A video of the policy: an existing one of the same settings at once (200), else a
        recording job (202) to poll."""
        from mprl.lineage import LineageStore

        run_dir, record = await self._checkpoint(policy_id)
        body = await request.body()
        data = _object(parse_json(body) if body else {}, {"steps", "seed", "env", "force"})
        steps = _int(data, "steps", self.settings.video_steps, 1, self.settings.max_video_steps)
        seed = _int(data, "seed", 0, 0, 2**32 - 1)
        env_id = _env_arg(data) or record["env"]
        await self._policy(policy_id)
        env_name = env_id.replace("/", "_")
        video_path = run_dir / "videos" / f"{policy_id}-{env_name}-s{seed}-{steps}.mp4"

        def existing_videos() -> list[dict[str, Any]]:
            with LineageStore(run_dir, readonly=True) as store:
                return [v for v in store.videos(policy_id) if Path(store.abs(v["path"])) == video_path and video_path.is_file()]

        existing = await asyncio.to_thread(existing_videos)
        if existing and not data.get("force"):  # the same request as before: its video
            v = existing[-1]
            return json_response({"state": "done", "video_id": v["video_id"], "video_url": f"{API}/videos/{v['video_id']}", "existing": True})
        await self._check_video_cap(run_dir, policy_id, video_path)
        path = stored_path(run_dir, record["path"])
        job_id = "job-" + short_hash(policy_id, env_id, steps, seed, bool(data.get("force")) and time.time())
        job = await self.worker.start_video.remote({
            "job_id": job_id, "policy_id": policy_id, "run_id": record["run_id"], "checkpoint": str(path), "run_dir": str(run_dir),
            "env": env_id, "steps": steps, "seed": seed, "video_path": str(video_path),
        })
        if "refused" in job:
            raise ApiError(job["refused"]["status"], job["refused"]["code"], job["refused"]["message"])
        return json_response(self._job_view(job), status=202 if job["state"] != "done" else 200)

    async def _check_video_cap(self, run_dir: Path, policy_id: str, video_path: Path) -> None:
        """At most `max_videos_per_policy` on-demand video files per policy; re-making one of them is free."""
        from mprl.lineage import LineageStore

        def on_demand() -> set[Path]:
            with LineageStore(run_dir, readonly=True) as store:
                return {Path(store.abs(v["path"])) for v in store.videos(policy_id) if v["source"] in ON_DEMAND_SOURCES}

        made = await asyncio.to_thread(on_demand)
        cap = self.settings.max_videos_per_policy
        if video_path not in made and len(made) >= cap:
            raise ApiError(429, "video_limit", f"Policy {policy_id} has {len(made)} videos made on demand, this server's limit of {cap}: "
                           f"watch one of them (GET {API}/policies/{policy_id} lists them), or ask again with the settings of one.")

    def _job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        view = {**job, "status_url": f"{API}/videos/jobs/{job['job_id']}"}
        if job.get("video_id"):
            view["video_url"] = f"{API}/videos/{job['video_id']}"
        return view

    @app.get(f"{API}/videos/jobs/{{job_id}}")
    async def video_job(self, job_id: str) -> Response:
        job = await self.worker.job.remote(job_id)
        if job is None:
            raise ApiError(404, "unknown_job", f"No video job {job_id!r} (jobs are kept until the server restarts). Start one with POST {API}/policies/{{policy_id}}/videos.")
        if job["state"] == "done" and job_id not in self.rescanned_jobs:  # its video becomes fetchable at once
            self.rescanned_jobs.add(job_id)
            await asyncio.to_thread(self.catalog.rescan, True)
        return json_response(self._job_view(job))

    async def _video(self, video_id: str) -> tuple[Path, dict[str, Any]]:
        found = None
        if isinstance(video_id, str) and video_id.startswith("vid-") and await self._find("videos", video_id) is not None:
            found = await asyncio.to_thread(self.catalog.video, video_id)  # re-read: it may have been re-recorded
        if found is None:
            raise ApiError(404, "unknown_video", f"No video {video_id!r} in the lineage. A policy's videos are listed by GET {API}/policies/{{policy_id}}; make one with POST {API}/policies/{{policy_id}}/videos.")
        run_dir, row = found
        path = stored_path(run_dir, row["path"])
        if not path.is_file():
            raise ApiError(410, "video_missing", f"Video {video_id} is registered but its file is gone. Make it again with POST {API}/policies/{row['checkpoint_id']}/videos and {{\"force\": true}}.")
        return path, row

    @app.get(f"{API}/videos/{{video_id}}/info")
    async def video_info(self, video_id: str) -> Response:
        path, row = await self._video(video_id)
        return json_response({**{k: v for k, v in row.items() if k != "path"}, "bytes": path.stat().st_size, "url": f"{API}/videos/{video_id}"})

    @app.get(f"{API}/videos/{{video_id}}")
    async def video_file(self, video_id: str) -> Response:
        path, _ = await self._video(video_id)
        return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "no-cache"})

    # ---- the workbench: assets, launch, stop/resume, dataset builds, compare (mprl.workbench, mprl.compare)
    def _require_control(self, request: Request) -> None:
        """State-changing requests carry the server's control token in a header (never a cookie:
        a page on another site could make the browser send a cookie, but not this header)."""
        expected = self.settings.control_token
        if not expected:
            raise ApiError(403, "control_disabled", "This server was started without a control token, so it launches, stops and builds nothing. Start it with `mprl serve`, which prints one.")
        given = request.headers.get("x-mprl-token")
        auth = request.headers.get("authorization", "")
        if given is None and auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(401, "control_token_required", "Launching, stopping, resuming and building change state: send the token `mprl serve` printed "
                           "(stored in ~/.mprl/serve-token or its --token-file) in the header `X-Mprl-Token: TOKEN`. Cookies are not accepted for this.")

    @app.get(f"{API}/assets/algorithms")
    async def asset_algorithms(self) -> Response:
        from mprl import workbench

        return json_response({"algorithms": await asyncio.to_thread(workbench.algorithms)})

    @app.get(f"{API}/assets/environments")
    async def asset_environments(self) -> Response:
        from mprl import workbench

        return json_response(await asyncio.to_thread(workbench.environments))

    @app.get(f"{API}/assets/datasets")
    async def asset_datasets(self, id: str | None = None) -> Response:
        from mprl import workbench

        if id is None:
            return json_response({"datasets": await asyncio.to_thread(workbench.datasets)})
        try:
            return json_response(await asyncio.to_thread(workbench.dataset_details, id))
        except MprlError as e:
            raise ApiError(404, "unknown_dataset", str(e)) from None

    @app.get(f"{API}/assets/checkpoints")
    async def asset_checkpoints(self) -> Response:
        from mprl import workbench

        runs = {r["run_id"]: r["name"] for r in await asyncio.to_thread(self.catalog.runs)}
        cks = [{**p, "run_name": runs.get(p["run_id"])} for p in await asyncio.to_thread(self.catalog.policies)]
        imported = {c["policy_id"]: c for c in await asyncio.to_thread(workbench.imported_checkpoints, self.settings.storage_path)}
        own = [c for c in cks if c["policy_id"] not in imported]  # an import is a run of its own: listed once, as imported
        return json_response({"checkpoints": own, "imported": [{**c, "phase": "import", "paradigm": "imported", "num_env_steps": 0} for c in imported.values()]})

    @app.post(f"{API}/datasets/build")
    async def build_dataset(self, request: Request) -> Response:
        self._require_control(request)
        data = _object(parse_json(await request.body()), {"env", "quality", "size", "id", "seed", "budget"})
        env = _env_arg(data)
        if env is None:
            raise ApiError(422, "invalid_request", "'env' is required: the environment whose dataset to build, e.g. 'InvertedPendulum-v5'.")
        quality = data.get("quality", "random")
        size = _int(data, "size", 10_000, 1, 2_000_000)
        seed = _int(data, "seed", 0, 0, 2**32 - 1)
        budget = _int(data, "budget", None, 1, 10_000_000)
        did = data.get("id")
        if did is not None and (not isinstance(did, str) or not did):
            raise ApiError(422, "invalid_request", "'id' must be a Minari dataset id such as 'mprl/invertedpendulum/random-v0'.")
        try:
            from mprl.spec.values import _dataset_id

            if did is not None:
                _dataset_id(did)
            job = self.dataset_jobs.start(env, quality, size, did, seed=seed, budget=budget)
        except MprlError as e:
            raise ApiError(409, "dataset_refused", str(e)) from None
        except ValueError as e:
            raise ApiError(422, "invalid_request", f"'id': {e}") from None
        return json_response({**job, "status_url": f"{API}/datasets/jobs/{job['job_id']}"}, status=202)

    @app.get(f"{API}/datasets/jobs/{{job_id}}")
    async def dataset_job(self, job_id: str) -> Response:
        job = self.dataset_jobs.get(job_id)
        if job is None:
            raise ApiError(404, "unknown_job", f"No dataset build {job_id!r} (builds are kept until the server restarts).")
        return json_response(job)

    async def _plan(self, request: Request) -> Any:
        from mprl import workbench

        form = parse_json(await request.body())
        try:
            return await asyncio.to_thread(workbench.plan_launch, form, self.catalog, self.settings.storage_path)
        except workbench.FormError as e:
            raise _FormRefused(e.fields) from None
        except MprlError as e:
            raise ApiError(422, "invalid_launch", str(e)) from None

    @app.post(f"{API}/launch/check")
    async def launch_check(self, request: Request) -> Response:
        """Validate a launch form as `mprl run` validates YAML, and check the transfer; starts nothing."""
        from mprl import workbench

        try:
            launch = await self._plan(request)
        except _FormRefused as e:
            return json_response({"valid": False, "errors": e.fields})
        transfer = await asyncio.to_thread(workbench.transfer_check, launch)
        return json_response({"valid": True, "errors": {}, "transfer": transfer, "mode": launch.mode, "run_id": launch.run_id,
                              "phase": launch.phase, "yaml": launch.yaml()})

    @app.post(f"{API}/launch/yaml")
    async def launch_yaml(self, request: Request) -> Response:
        try:
            launch = await self._plan(request)
        except _FormRefused as e:
            return json_response({"valid": False, "errors": e.fields}, status=422)
        name = f"{launch.run_id or launch.spec.name}-{launch.phase}.yaml"
        return Response(launch.yaml(), media_type="application/x-yaml", headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.post(f"{API}/launch")
    async def launch(self, request: Request) -> Response:
        """Start a phase from a checkpoint: a branch of its run, or a new run (202; follow it with .../progress)."""
        from mprl import workbench

        self._require_control(request)
        try:
            launch = await self._plan(request)
        except _FormRefused as e:
            return json_response({"error": {"status": 422, "code": "invalid_form", "message": "The launch form has errors: " + "; ".join(f"{k}: {v}" for k, v in e.fields.items())},
                                  "errors": e.fields}, status=422)
        transfer = await asyncio.to_thread(workbench.transfer_check, launch)
        if not transfer["possible"]:
            raise ApiError(422, "transfer_impossible", f"Checkpoint {launch.checkpoint_id} cannot initialise this phase: {transfer['summary']}")
        try:
            run_id, _, actor = await asyncio.to_thread(workbench.start_launch, launch)
        except MprlError as e:
            raise ApiError(409, "launch_refused", str(e)) from None
        try:  # its constructor writes the run's lineage: once it has, every endpoint knows the run
            await asyncio.wait_for(actor.__ray_ready__.remote(), timeout=120)
        except Exception as e:  # noqa: BLE001 - a constructor that raised, or a cluster with no room
            import ray

            ray.kill(actor)
            raise ApiError(409, "launch_failed", f"The run's phase scheduler could not start: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}") from None
        self._watch(run_id, actor)
        await asyncio.to_thread(self.catalog.rescan, True)
        return json_response({"run_id": run_id, "mode": launch.mode, "phase": launch.phase, "node_id": launch.phase, "transfer": transfer,
                              "progress_url": f"{API}/runs/{run_id}/progress", "yaml": launch.yaml()}, status=202)

    def _watch(self, run_id: str, actor: Any) -> None:
        """Run the scheduler and follow it: its progress lines kept for the page; at the end, its
        videos finished (it then exits) or the actor released."""
        entry = {"actor": actor, "lines": [], "done": False, "summary": None}
        self.launched[run_id] = entry
        ref = actor.run.remote()

        async def follow() -> None:
            import ray

            offset = 0
            while True:
                done, _ = await asyncio.to_thread(ray.wait, [ref], timeout=1.0)
                try:
                    lines, offset = await actor.poll.remote(offset)
                    entry["lines"].extend(lines)
                except Exception as e:  # noqa: BLE001 - the actor was stopped or died: the lineage says which
                    logger.debug("poll of %s: %s", run_id, e)
                if done:
                    break
            try:
                summary = await ref
                entry["summary"] = {k: v for k, v in summary.items() if k in ("status", "error")}
                if summary.get("videos_pending"):
                    actor.finish_videos.remote()  # records them in the lineage, then exits
                else:
                    ray.kill(actor)
            except Exception as e:  # noqa: BLE001 - stopped (killed) or crashed
                entry["summary"] = {"status": "ended", "error": f"{type(e).__name__}"}
            entry["done"] = True
            await asyncio.to_thread(self.catalog.rescan, True)

        entry["task"] = asyncio.get_running_loop().create_task(follow())

    @app.get(f"{API}/runs/{{run_id}}/progress")
    async def run_progress(self, run_id: str, offset: int = 0) -> Response:
        """The run's status and phase statuses from its lineage, and its scheduler's progress
        lines from `offset` on (live while it runs)."""
        from mprl.lineage import LineageStore
        from mprl.workbench import run_is_active

        entry = self.launched.get(run_id)
        run_dir = await self._find("runs", run_id)
        if run_dir is None and entry is not None:
            # Launched here, its scheduler not started yet (a new Ray worker takes seconds), or it
            # died before writing a lineage: no lineage to read, but the run is this server's.
            failed = entry["done"]
            error = (entry["summary"] or {}).get("error") if failed else None
            return json_response({"run_id": run_id, "status": "failed" if failed else "starting", "error": error, "updated_at": None,
                                  "phases": [], "checkpoints": 0, "videos": 0, "active": not failed,
                                  "lines": entry["lines"][offset:], "offset": len(entry["lines"])})
        if run_dir is None:
            run_dir = await self._run_dir(run_id)  # the 404

        def read() -> dict[str, Any]:
            with LineageStore(run_dir, readonly=True) as store:
                run = store.run()
                return {"status": run["status"], "error": run["error"], "updated_at": run["updated_at"],
                        "phases": [{k: n[k] for k in ("node_id", "phase", "status", "branch", "parent_checkpoint_id")} for n in store.nodes()],
                        "checkpoints": len(store.checkpoints()), "videos": len(store.videos())}

        out = await asyncio.to_thread(read)
        if entry is not None:
            lines = entry["lines"]
            active = not entry["done"]
        else:
            lines = []
            active = await asyncio.to_thread(run_is_active, run_id)
        offset = max(0, min(offset, len(lines)))
        return json_response({**out, "run_id": run_id, "active": active, "lines": lines[offset:], "offset": len(lines)})

    @app.post(f"{API}/runs/{{run_id}}/stop")
    async def stop_run(self, run_id: str, request: Request) -> Response:
        """Stop a run as Ctrl-C on `mprl run` does: phases marked stopped, Tune's state kept for a resume."""
        import ray

        from mprl.pipeline.driver import find_scheduler

        self._require_control(request)
        await self._run_dir(run_id)
        actor = await asyncio.to_thread(find_scheduler, run_id)
        if actor is None:
            raise ApiError(409, "not_running", f"Run {run_id} has no live scheduler: nothing to stop.")
        try:
            await asyncio.wait_for(actor.stop.remote(), timeout=30)
        except Exception as e:  # noqa: BLE001 - killed below either way
            logger.warning("stop of %s: %s", run_id, e)
        ray.kill(actor)
        return json_response({"run_id": run_id, "status": "stopped", "resume_url": f"{API}/runs/{run_id}/resume"})

    @app.post(f"{API}/runs/{{run_id}}/resume")
    async def resume_run(self, run_id: str, request: Request) -> Response:
        """Continue a stopped or failed run, as `mprl resume` does (its finished phases are kept)."""
        from mprl import workbench
        from mprl.pipeline.driver import start_scheduler, validate_inputs

        self._require_control(request)
        run_dir = await self._run_dir(run_id)
        if await asyncio.to_thread(workbench.run_is_active, run_id):
            raise ApiError(409, "already_running", f"Run {run_id} is running already.")
        rid, spec, status = await asyncio.to_thread(workbench.resume_spec, run_dir)
        if status == "succeeded":
            raise ApiError(409, "nothing_to_resume", f"Run {run_id} succeeded: nothing to resume. Add a phase with 'continue with…' on a checkpoint.")
        try:
            await asyncio.to_thread(validate_inputs, spec, lambda _line: None)
            actor = await asyncio.to_thread(start_scheduler, spec, rid, str(run_dir))
        except MprlError as e:
            raise ApiError(409, "resume_refused", str(e)) from None
        self._watch(rid, actor)
        return json_response({"run_id": rid, "status": "running", "progress_url": f"{API}/runs/{rid}/progress"}, status=202)

    @app.get(f"{API}/compare")
    async def compare_runs(self, phase_runs: str) -> Response:
        """`?phase_runs=RUN/NODE,RUN/NODE`: curves per paradigm axis, final scores (mean, 95% CI, IQM), videos."""
        from mprl.compare import compare, parse_refs

        items = [p for p in phase_runs.split(",") if p]
        if not items or len(items) > 32:
            raise ApiError(422, "invalid_request", "'phase_runs' must list 1 to 32 phase runs as RUN_ID/NODE_ID, comma-separated.")
        for item in items:
            await self._run_dir(item.split("/", 1)[0])  # only runs this server serves (ids, never paths)
        try:
            out = await asyncio.to_thread(compare, self.settings.storage_path, parse_refs(items))
        except MprlError as e:
            raise ApiError(404, "unknown_phase_run", str(e)) from None
        return json_response(out)

    # ---- the page
    @app.get("/")
    async def page(self) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}")
    async def static(self, name: str) -> Response:
        if name not in STATIC_FILES:
            raise ApiError(404, "not_found", f"No static file {name!r}.")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


DEFAULT_TOKEN_FILE = Path("~/.mprl/serve-token")


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume reachable from elsewhere


def resolve_token(host: str, token: str | None, token_file: str | Path | None = None) -> tuple[str | None, Path | None]:
    """The token the server requires → (token, the file it was stored in, if generated).

    A given token is used as is. Bound to anything but loopback, a server without one would let
    anyone who can reach it load policies and render videos, so one is generated and stored
    in `token_file` (default ~/.mprl/serve-token) with mode 600 for clients on this machine.
    """
    import secrets

    if token:
        return token, None
    if is_loopback(host):
        return None, None
    path = Path(token_file or DEFAULT_TOKEN_FILE).expanduser()
    return _store_new_token(path, secrets.token_urlsafe(32)), path


def _store_new_token(path: Path, token: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode on O_CREAT: set it
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    return token


def resolve_control_token(access_token: str | None, token_file: str | Path | None = None) -> tuple[str, Path | None]:
    """The token that requests changing state (launch, stop, resume, dataset builds) must send
    in a header → (token, the file it was stored in, if generated).

    Always set, on loopback too: another process of this machine, or a page on another site
    the user's browser opens, can reach 127.0.0.1, but cannot read a file of mode 600 nor set
    a custom header on a cross-site request without a CORS grant this server never gives. A
    server with an access token uses it for both; otherwise one is generated at every start.
    """
    import secrets

    if access_token:
        return access_token, None
    path = Path(token_file or DEFAULT_TOKEN_FILE).expanduser()
    return _store_new_token(path, secrets.token_urlsafe(32)), path


def build_app(settings: ServeSettings) -> Any:
    """The Serve application graph: the ingress with a handle to the media worker."""
    s = settings.to_dict()
    return PolicyService.bind(s, MediaWorker.bind(s))


def enable_direct_ingress(port: int) -> None:
    """Let the ingress replica itself listen on `port` (Serve's direct ingress); call before `ray.init`.

    Through Serve's HTTP proxy every request crosses two processes (proxy → replica); on a
    2-core machine that hop alone costs ~10 ms p50 and caps `act` near 200 requests/s. With
    direct ingress the FastAPI replica answers HTTP itself (measured here: ~1.5 ms p50,
    ~1,600 requests/s under the same load). The settings are environment variables read by
    the Serve controller and replicas, so they must be set before the local Ray starts; the
    proxy still runs, on `ServeSettings.proxy_port`.
    """
    os.environ["RAY_SERVE_ENABLE_DIRECT_INGRESS"] = "1"
    # Serve's throughput profile: user code on the replica's own event loop (no thread hop per
    # request), buffered request logs, gRPC between deployments, GC frozen after start-up.
    os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
    os.environ["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] = str(port)
    os.environ["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"] = str(port + 1)  # one port: [port, port + 1)


def direct_ingress_enabled() -> bool:
    """Whether this process asked for direct ingress (the local Ray it starts inherits the setting)."""
    return os.environ.get("RAY_SERVE_ENABLE_DIRECT_INGRESS") == "1"


def _check_port_free(host: str, port: int) -> None:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise MprlError(f"Cannot listen on {host}:{port} ({e.strerror}): another server uses it. Pick another --port (the app also needs the proxy port, --port + 1 by default).") from None


def check_ports(settings: ServeSettings, direct: bool) -> int:
    """Fail early, with a readable message, if the app's or the proxy's port is taken; the proxy's port."""
    proxy_port = (settings.proxy_port or settings.port + 1) if direct else settings.port
    for port in {settings.port, proxy_port}:
        _check_port_free(settings.host, port)
    return proxy_port


def start(settings: ServeSettings, *, wait_s: float = 180.0) -> str:
    """Start Serve on the connected Ray cluster and deploy the app; returns its base URL once it answers.

    With direct ingress (`enable_direct_ingress`, as `mprl serve` does) the app answers on
    `settings.port` from its replica and Serve's proxy listens on `settings.proxy_port`
    (default port + 1); otherwise the proxy listens on `settings.port`.
    """
    import urllib.request

    direct = direct_ingress_enabled()
    proxy_port = check_ports(settings, direct)
    serve.start(http_options={"host": settings.host, "port": proxy_port}, logging_config=LOG_CONFIG)
    try:
        serve.run(build_app(settings), name="mprl", route_prefix="/", blocking=False)
    except RuntimeError as e:
        raise MprlError(f"The Serve app failed to deploy ({e}). Is port {settings.port} free? The replica logs are under the Ray session's logs/serve/.") from None
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}"
    deadline = time.monotonic() + wait_s
    headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{url}{API}/health", headers=headers), timeout=5) as r:
                if r.status == 200:
                    return url
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise MprlError(f"The Serve app did not answer on {url} within {wait_s:.0f} s. Is the port free? See the Ray logs.")
        time.sleep(0.5)
