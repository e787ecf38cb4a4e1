"""`mprl bench serve`: act latency, act throughput and video time of the Serve app, on loopback.

Without `--url` it builds everything it measures: a local Ray, a small real TD3 run on
HalfCheetah-v5 (mprl.serve.demo), the Serve app on 127.0.0.1. The load generator is a
minimal asyncio HTTP/1.1 client with keep-alive connections (pre-encoded requests), so
that on a small machine the client takes as little CPU from the server as possible.

- latency: one client, one observation per request, sequential; p50 and p99;
- throughput: `--clients` concurrent clients, one observation per request, for
  `--seconds`; actions/s (= requests/s here); also with `--batch` observations per request;
- video: POST a `--video-steps`-frame video of the HalfCheetah checkpoint, poll its job to
  done; wall-clock seconds end to end (policy load, rendering, encoding, lineage record).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import urllib.request
from typing import Any

import numpy as np


class Conn:
    """One keep-alive HTTP/1.1 connection that sends pre-encoded requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        return cls(*await asyncio.open_connection(host, port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def post_request(host: str, port: int, path: str, payload: Any) -> bytes:
    body = json.dumps(payload).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def http_json(url: str, payload: Any | None = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


async def measure_latency(host: str, port: int, request: bytes, n: int, warmup: int) -> list[float]:
    conn = await Conn.open(host, port)
    try:
        for _ in range(warmup):
            await conn.send(request)
        out = []
        for _ in range(n):
            t = time.perf_counter()
            status, body = await conn.send(request)
            out.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"act answered {status}: {body[:200]!r}")
        return out
    finally:
        conn.close()


async def measure_throughput(host: str, port: int, request: bytes, clients: int, seconds: float) -> tuple[int, float, list[float]]:
    """Requests answered 200 by `clients` closed-loop clients in `seconds` (after a short warm-up)."""
    conns = [await Conn.open(host, port) for _ in range(clients)]
    lat: list[float] = []
    errors = 0
    stop_at = 0.0

    async def loop(conn: Conn, measure: bool) -> int:
        nonlocal errors
        done = 0
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            status, _ = await conn.send(request)
            if status != 200:
                errors += 1
                continue
            done += 1
            if measure:
                lat.append(time.perf_counter() - t)
        return done

    try:
        stop_at = time.perf_counter() + min(2.0, seconds / 4)
        await asyncio.gather(*(loop(c, False) for c in conns))
        t0 = time.perf_counter()
        stop_at = t0 + seconds
        counts = await asyncio.gather(*(loop(c, True) for c in conns))
        elapsed = time.perf_counter() - t0
    finally:
        for c in conns:
            c.close()
    if errors:
        raise RuntimeError(f"{errors} act requests failed under load")
    return sum(counts), elapsed, lat


def measure_video(url: str, policy_id: str, steps: int) -> float:
    t0 = time.perf_counter()
    job = http_json(f"{url}/api/v1/policies/{policy_id}/videos", {"steps": steps, "force": True})
    while job["state"] not in ("done", "failed"):
        time.sleep(0.1)
        job = http_json(f"{url}/api/v1/videos/jobs/{job['job_id']}")
    if job["state"] == "failed":
        raise RuntimeError(f"video job failed: {job['error']}")
    return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def run_bench(url: str, policy_id: str, args: argparse.Namespace, say: Any) -> dict[str, Any]:
    from urllib.parse import urlparse

    u = urlparse(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    load_start = list(os.getloadavg())  # other work on the machine shares the CPUs: report the load before and after
    info = http_json(f"{url}/api/v1/policies/{policy_id}")
    obs_dim = int(np.prod(info["observation_shape"]))
    rng = np.random.default_rng(0)
    path = f"/api/v1/policies/{policy_id}/act"
    one = post_request(host, port, path, {"observation": rng.normal(size=obs_dim).round(4).tolist()})
    batch = post_request(host, port, path, {"observations": rng.normal(size=(args.batch, obs_dim)).round(4).tolist()})

    say(f"latency: 1 client, {args.requests} sequential act requests of 1 observation ({info['env']}, obs {obs_dim})")
    lat = asyncio.run(measure_latency(host, port, one, args.requests, warmup=200))
    say(f"throughput: {args.clients} clients × {args.seconds:.0f} s, 1 observation per request")
    n, elapsed, lat_load = asyncio.run(measure_throughput(host, port, one, args.clients, args.seconds))
    say(f"throughput: {args.clients} clients × {args.seconds:.0f} s, {args.batch} observations per request")
    nb, elapsed_b, _ = asyncio.run(measure_throughput(host, port, batch, args.clients, args.seconds))
    stats = http_json(f"{url}/api/v1/stats")
    video_s = None
    if args.video_steps:
        say(f"video: {args.video_steps} steps of {info['env']}, end to end through the API")
        video_s = measure_video(url, args.video_policy or policy_id, args.video_steps)
    return {
        "act_p50_ms": pct(lat, 50), "act_p99_ms": pct(lat, 99), "actions_per_s": n / elapsed,
        "video_s": video_s,
        "act_under_load_p50_ms": pct(lat_load, 50), "act_under_load_p99_ms": pct(lat_load, 99),
        "actions_per_s_batched": nb * args.batch / elapsed_b, "batch": args.batch, "clients": args.clients,
        "requests": args.requests, "video_steps": args.video_steps,
        "mean_server_batch": stats["act_requests"] / max(1, stats["act_batches"]), "env": info["env"], "cpus": os.cpu_count(),
        "load_average_start": load_start, "load_average": list(os.getloadavg()),
    }


def bench_serve(args: argparse.Namespace) -> int:
    """Measure a running server (`--url`, `--policy`) or one this command starts on loopback."""
    say = (lambda *_: None) if args.json else (lambda m: print(f"[bench serve] {m}", flush=True))
    if args.url:
        if not args.policy:
            from mprl.errors import MprlError

            raise MprlError("--url needs --policy (a policy id from GET /api/v1/policies).")
        result = run_bench(args.url.rstrip("/"), args.policy, args, say)
    else:
        result = _bench_own_server(args, say)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"act latency, 1 client:           p50 {result['act_p50_ms']:.2f} ms   p99 {result['act_p99_ms']:.2f} ms   (target ≤ 3 / ≤ 15)")
        print(f"act throughput, {result['clients']} clients:     {result['actions_per_s']:,.0f} actions/s   (target ≥ 2,000; p50 {result['act_under_load_p50_ms']:.1f} ms)")
        print(f"act throughput, {result['batch']} obs/request:  {result['actions_per_s_batched']:,.0f} actions/s")
        print(f"requests per server-side batch (serve.batch), mean over the run: {result['mean_server_batch']:.1f}")
        if result["video_s"] is not None:
            print(f"{result['video_steps']}-step {result['env']} video:  {result['video_s']:.1f} s   (target ≤ 15)")
        print(f"load average (1, 5, 15 min) at the start: {', '.join(f'{x:.1f}' for x in result['load_average_start'])}; "
              f"at the end: {', '.join(f'{x:.1f}' for x in result['load_average'])}; on {result['cpus']} CPUs")
    return 0


def _bench_own_server(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    import ray

    from mprl.serve.app import ServeSettings, enable_direct_ingress, start
    from mprl.serve.demo import build_demo_run

    os.environ.setdefault("MUJOCO_GL", "egl")
    storage = tempfile.mkdtemp(prefix="mprl-bench-serve-")
    enable_direct_ingress(args.port)  # as `mprl serve` runs it
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        say(f"training a small TD3 on {args.env} (3 iterations of 1,000 steps) for real checkpoints")
        demo = build_demo_run(storage, args.env, env_steps_per_iteration=1000, eval_episodes=1, hidden=[256, 256])
        say(f"starting the Serve app on 127.0.0.1:{args.port}")
        url = start(ServeSettings(storage_path=storage, port=args.port))
        return run_bench(url, demo["checkpoints"][-1], args, say)
    finally:  # our own local Ray: shutting it down ends Serve too (serve.shutdown() alone takes ~30 s)
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)


def add_parser(bsub: argparse._SubParsersAction, func: Any) -> None:
    b = bsub.add_parser("serve", help="Serve app on loopback: act latency (1 client), actions/s (16 clients), video time")
    b.add_argument("--json", action="store_true", help="print one JSON object (act_p50_ms, act_p99_ms, actions_per_s, video_s, ...)")
    b.add_argument("--env", default="HalfCheetah-v5")
    b.add_argument("--port", type=int, default=8765)
    b.add_argument("--requests", type=int, default=2000, help="sequential requests for the latency figures")
    b.add_argument("--clients", type=int, default=16)
    b.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput measurement")
    b.add_argument("--batch", type=int, default=32, help="observations per request in the batched throughput figure")
    b.add_argument("--video-steps", type=int, default=1000, help="0 skips the video figure")
    b.add_argument("--url", help="measure a running `mprl serve` instead (with --policy)")
    b.add_argument("--policy", help="policy id for --url")
    b.add_argument("--video-policy", help="policy id for the video figure (default: --policy)")
    b.set_defaults(func=func)
