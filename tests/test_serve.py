"""`mprl serve` for real: a Ray Serve app on 127.0.0.1 over a real run's lineage, real HTTP.

The run is a small real TD3 (mprl.serve.demo: two phases, three RLlib checkpoints registered
in the lineage); the server is the `mprl serve` command in its own process, with its own
local Ray, exactly as users start it. Serve takes tens of seconds to start, so one demo run
serves this module, tests/test_video.py and tests/test_web.py, and one server the modules
that run one after another (`served_app`, `release_app`).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ENV_ID = "InvertedPendulum-v5"
MAX_BATCH = 64
PAGE_VIDEO_STEPS = 150
MAX_VIDEOS = 4  # on-demand videos per policy
MAX_RENDERS = 2  # videos queued or rendering at once

_SHARED: dict[str, Any] = {}  # the session's demo run, and the server while a module uses it


def _free_port_pair() -> int:
    """A port p with p and p + 1 free (app and Serve's proxy), outside Ray's worker port range."""
    for port in range(int(21000 + (os.getpid() % 400) * 20), 29990, 2):
        ok = True
        for p in (port, port + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free port pair")


def http(method: str, url: str, body: Any = None, raw: bytes | None = None, timeout: float = 120,
         headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON or bytes, headers) for one real HTTP request; 4xx/5xx are returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, payload, headers = r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        status, payload, headers = e.code, e.read(), dict(e.headers)
    headers = {k.lower(): v for k, v in headers.items()}
    if headers.get("content-type", "").startswith("application/json"):
        return status, json.loads(payload), headers
    return status, payload, headers


def _start(storage: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port_pair()
    env = {**os.environ, "MUJOCO_GL": "egl", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "mprl.cli", "serve", "--storage-path", str(storage), "--port", str(port),
           "--max-batch", str(MAX_BATCH), "--video-steps", str(PAGE_VIDEO_STEPS), "--num-cpus", "2",
           "--max-videos-per-policy", str(MAX_VIDEOS), "--max-render-jobs", str(MAX_RENDERS),
           "--token-file", str(storage / "control-token")]  # the workbench's control token (tests/test_workbench.py)
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mprl serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if http("GET", f"{url}/api/v1/health", timeout=5)[0] == 200:
                return proc, url
        except OSError:
            pass
        time.sleep(1)
    _stop(proc)
    raise RuntimeError(f"mprl serve did not answer within 240 s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Ctrl-C as a user would (Serve and the server's own Ray shut down), then kill what is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


SHARED_FIXTURES = {"app", "demo"}  # the module fixtures (here, test_video.py, test_web.py, test_workbench.py) that use the server


def served_app(ray_local: Any, tmp_path_factory: pytest.TempPathFactory, server: bool = True) -> dict[str, Any]:
    """The demo run (built once per session) and a `mprl serve` over it, shared by adjacent modules."""
    if "demo" not in _SHARED:
        from mprl.serve.demo import build_demo_run

        storage = tmp_path_factory.mktemp("serve_runs")
        t0 = time.monotonic()
        _SHARED["demo"] = {**build_demo_run(storage, ENV_ID, env_steps_per_iteration=200, eval_episodes=2), "storage": storage}
        print(f"\n[serve fixture] demo run built in {time.monotonic() - t0:.1f} s")
    demo = _SHARED["demo"]
    if not server:
        return dict(demo)
    if "proc" not in _SHARED:
        t0 = time.monotonic()
        log = demo["storage"] / f"mprl-serve-{int(time.time())}.log"
        proc, url = _start(demo["storage"], log)
        print(f"\n[serve fixture] `mprl serve` up in {time.monotonic() - t0:.1f} s at {url} (log {log})")
        _SHARED.update(proc=proc, url=url)
    return {**demo, "url": _SHARED["url"], "api": f"{_SHARED['url']}/api/v1", "proc": _SHARED["proc"]}


def release_app(request: pytest.FixtureRequest) -> None:
    """Stop the server unless the test right after this module uses it too.

    An idle Serve app with its own Ray costs ~10% of a core; the rest of the suite should
    not pay for it while it runs other modules.
    """
    items = request.session.items
    mine = [i for i, item in enumerate(items) if item.module is request.module]
    following = items[mine[-1] + 1] if mine and mine[-1] + 1 < len(items) else None
    if following is None or not SHARED_FIXTURES & set(following.fixturenames):
        proc = _SHARED.pop("proc", None)
        if proc is not None:
            _stop(proc)


@pytest.fixture(scope="module")
def app(request, ray_local, tmp_path_factory):
    yield served_app(ray_local, tmp_path_factory)
    release_app(request)


def _checkpoint_path(app: dict[str, Any], policy_id: str) -> Path:
    from mprl.lineage import LineageStore

    with LineageStore(app["run_dir"], readonly=True) as store:
        return store.abs(store.checkpoint(policy_id)["path"])


# ------------------------------------------------------------------ listing


def test_lists_runs_phases_and_policies(app):
    status, body, _ = http("GET", f"{app['api']}/runs")
    assert status == 200
    run = next(r for r in body["runs"] if r["run_id"] == app["run_id"])
    assert [p["phase"] for p in run["phases"]] == ["pretrain", "finetune"]
    assert run["checkpoints"] == 3

    status, body, _ = http("GET", f"{app['api']}/policies?run={app['run_id']}")
    assert status == 200
    assert sorted(p["policy_id"] for p in body["policies"]) == sorted(app["checkpoints"])
    finetune = next(p for p in body["policies"] if p["phase"] == "finetune")
    assert finetune["parent_checkpoint_id"] == app["checkpoints"][1]

    status, body, _ = http("GET", f"{app['api']}/policies/{app['checkpoints'][0]}")
    assert status == 200
    assert body["observation_shape"] == [4] and body["action_shape"] == [1] and body["env"] == ENV_ID

    status, curves, _ = http("GET", f"{app['api']}/runs/{app['run_id']}/curves")
    assert status == 200 and curves["panels"][0]["axis"] == "num_env_steps"
    status, graph, _ = http("GET", f"{app['api']}/runs/{app['run_id']}/lineage")
    assert status == 200
    assert {"from": app["checkpoints"][1], "to": "finetune", "kind": "initialises"} in graph["edges"]


# ------------------------------------------------------------------ act


def test_act_matches_the_checkpoint_policy(app):
    from mprl.serve.policy import load_policy

    pid = app["checkpoints"][-1]
    local = load_policy(_checkpoint_path(app, pid))
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)

    status, body, _ = http("POST", f"{app['api']}/policies/{pid}/act", {"observation": obs[0].tolist()})
    assert status == 200, body
    np.testing.assert_allclose(body["action"], local.act(obs[:1])[0], rtol=1e-5, atol=1e-6)

    status, body, _ = http("POST", f"{app['api']}/policies/{pid}/act", {"observations": obs.tolist()})
    assert status == 200, body
    np.testing.assert_allclose(body["actions"], local.act(obs), rtol=1e-5, atol=1e-6)
    assert all(-3.0 <= a[0] <= 3.0 for a in body["actions"])  # InvertedPendulum's action bounds


def test_concurrent_act_requests_are_batched_on_the_server(app):
    pid = app["checkpoints"][0]
    before = http("GET", f"{app['api']}/stats")[1]
    obs = np.random.default_rng(1).normal(size=(64, 4)).round(3).tolist()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda o: http("POST", f"{app['api']}/policies/{pid}/act", {"observation": o}), obs))
    assert all(r[0] == 200 for r in results)
    after = http("GET", f"{app['api']}/stats")[1]
    requests = after["act_requests"] - before["act_requests"]
    batches = after["act_batches"] - before["act_batches"]
    assert requests == 64
    assert batches < requests, f"{requests} concurrent requests ran in {batches} forward passes: no server-side batching"
    assert after["act_largest_batch"] > 1


# ------------------------------------------------------------------ rollouts and videos


def test_rollouts_are_seeded_and_match_a_local_rollout(app):
    from mprl.serve.policy import load_policy
    from mprl.video import rollouts

    pid = app["checkpoints"][1]
    status, body, _ = http("POST", f"{app['api']}/policies/{pid}/rollouts", {"seeds": [3, 4, 5]})
    assert status == 200, body
    assert body["env"] == ENV_ID and body["seeds"] == [3, 4, 5]
    assert len(body["returns"]) == len(body["lengths"]) == len(body["normalized_scores"]) == 3
    local = rollouts(load_policy(_checkpoint_path(app, pid)), ENV_ID, [3, 4, 5])
    assert body["returns"] == pytest.approx(local["returns"]) and body["lengths"] == local["lengths"]
    assert http("POST", f"{app['api']}/policies/{pid}/rollouts", {"seeds": [3, 4, 5]})[1]["returns"] == body["returns"]

    # Same spaces, named explicitly (a variant would be named the same way).
    status, body, _ = http("POST", f"{app['api']}/policies/{pid}/rollouts", {"episodes": 2, "seed": 7, "env": ENV_ID, "video": True})
    assert status == 200, body
    assert body["seeds"] == [7, 8] and body["video_id"].startswith("vid-")
    status, mp4, headers = http("GET", f"{app['url']}{body['video_url']}")
    assert status == 200 and headers["content-type"] == "video/mp4"
    assert mp4[4:8] == b"ftyp"


def test_video_is_made_on_demand_recorded_in_the_lineage_and_fetched(app):
    from mprl.lineage import LineageStore

    pid = app["checkpoints"][0]
    status, job, _ = http("POST", f"{app['api']}/policies/{pid}/videos", {"steps": 40, "seed": 1})
    assert status == 202, job
    assert job["state"] in ("queued", "running") and job["total"] == 40
    deadline = time.monotonic() + 120
    while job["state"] != "done":
        assert job["state"] != "failed", job
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = http("GET", f"{app['api']}/videos/jobs/{job['job_id']}")[1]
    assert job["frames"] == 40

    status, mp4, headers = http("GET", f"{app['url']}{job['video_url']}")
    assert status == 200 and headers["content-type"] == "video/mp4" and mp4[4:8] == b"ftyp"
    with LineageStore(app["run_dir"], readonly=True) as store:
        videos = [v for v in store.videos(pid) if v["video_id"] == job["video_id"]]
    assert videos and videos[0]["steps"] == 40 and videos[0]["source"] == "serve" and videos[0]["env"] == ENV_ID

    # Asking again answers at once with the recorded video.
    status, again, _ = http("POST", f"{app['api']}/policies/{pid}/videos", {"steps": 40, "seed": 1})
    assert status == 200 and again["state"] == "done" and again["video_id"] == job["video_id"]
    status, info, _ = http("GET", f"{app['api']}/videos/{job['video_id']}/info")
    assert status == 200 and info["bytes"] == len(mp4) and "path" not in info


# ------------------------------------------------------------------ bad input


def _bad_inputs(app: dict[str, Any]) -> list[tuple[str, str, str, bytes, int, str, str]]:
    pid = app["checkpoints"][0]
    act = f"{app['api']}/policies/{pid}/act"
    big = json.dumps({"observations": [[0.0] * 4] * (MAX_BATCH + 1)}).encode()
    return [
        # (name, method, url, body, status, code, a word the message must contain)
        ("unknown policy", "POST", f"{app['api']}/policies/ck-0000000000/act", b'{"observation": [0, 0, 0, 0]}', 404, "unknown_policy", "GET /api/v1/policies"),
        ("path as policy", "POST", f"{app['api']}/policies/..%2F..%2Fetc/act", b'{"observation": [0, 0, 0, 0]}', 404, "", ""),
        ("wrong shape", "POST", act, b'{"observation": [0, 0, 0]}', 422, "wrong_observation_shape", "[4]"),
        ("wrong batch shape", "POST", act, b'{"observations": [[0, 0, 0, 0], [0, 0]]}', 422, "invalid_observation", "ragged"),
        ("NaN", "POST", act, b'{"observation": [0, NaN, 0, 0]}', 422, "non_finite_observation", "NaN"),
        ("infinity", "POST", act, b'{"observations": [[0, 0, 0, 0], [0, 0, -Infinity, 0]]}', 422, "non_finite_observation", "[1, 2]"),
        ("string value", "POST", act, b'{"observation": [0, "a", 0, 0]}', 422, "invalid_observation", "numbers"),
        ("batch too large", "POST", act, big, 413, "batch_too_large", str(MAX_BATCH)),
        ("malformed JSON", "POST", act, b'{"observation": [0, 0,', 400, "malformed_json", "not valid JSON"),
        ("empty body", "POST", act, b"", 400, "empty_body", "JSON object"),
        ("not an object", "POST", act, b"[1, 2, 3, 4]", 422, "invalid_request", "JSON object"),
        ("both fields", "POST", act, b'{"observation": [0, 0, 0, 0], "observations": [[0, 0, 0, 0]]}', 422, "invalid_request", "exactly one"),
        ("unknown env", "POST", f"{app['api']}/policies/{pid}/rollouts", b'{"seeds": [0], "env": "InvertedPendulm-v5"}', 422, "unknown_environment", "Did you mean"),
        # A `module:Name` id would make gym.make import a module the client chose: refused, never made.
        ("module env id", "POST", f"{app['api']}/policies/{pid}/rollouts", b'{"seeds": [0], "env": "antigravity:Fly-v0"}', 422, "unknown_environment", "module:"),
        ("module env id, video", "POST", f"{app['api']}/policies/{pid}/videos", b'{"env": "os:Env-v0"}', 422, "unknown_environment", "module:"),
        # HTTP never accepts a path: ids only, which the lineage maps to the paths it recorded.
        ("path as policy, encoded", "POST", f"{app['api']}/policies/%2Fetc%2Fpasswd/act", b'{"observation": [0, 0, 0, 0]}', 404, "", ""),
        ("path as video", "GET", f"{app['api']}/videos/..%2F..%2Flineage.sqlite", b"", 404, "", ""),
        ("path as static file", "GET", f"{app['url']}/static/..%2F..%2Fcli.py", b"", 404, "", ""),
        ("path as run", "GET", f"{app['api']}/policies?run=%2Ftmp", b"", 404, "unknown_run", "GET /api/v1/runs"),
        ("checkpoint path field", "POST", f"{app['api']}/policies/{pid}/rollouts", b'{"seeds": [0], "checkpoint": "/tmp/x"}', 422, "invalid_request", "Unknown field"),
        ("env of other spaces", "POST", f"{app['api']}/policies/{pid}/rollouts", b'{"seeds": [0], "env": "Hopper-v5"}', 422, "bad_environment", "same spaces"),
        ("too many episodes", "POST", f"{app['api']}/policies/{pid}/rollouts", b'{"episodes": 1000}', 413, "too_many_episodes", "20"),
        ("bad seeds", "POST", f"{app['api']}/policies/{pid}/rollouts", b'{"seeds": ["a"]}', 422, "invalid_request", "integers"),
        ("unknown video", "GET", f"{app['api']}/videos/vid-0000000000", b"", 404, "unknown_video", "POST"),
        ("unknown job", "GET", f"{app['api']}/videos/jobs/job-0", b"", 404, "unknown_job", "POST"),
        ("unknown run", "GET", f"{app['api']}/runs/no-such-run/curves", b"", 404, "unknown_run", "GET /api/v1/runs"),
        ("unknown endpoint", "GET", f"{app['api']}/nothing-here", b"", 404, "not_found", "GET /api/v1"),
        ("too many video steps", "POST", f"{app['api']}/policies/{pid}/videos", b'{"steps": 10000000}', 413, "invalid_request", "10000"),
    ]


def test_bad_input_answers_a_4xx_json_error_and_the_server_keeps_serving(app):
    pid = app["checkpoints"][0]
    for name, method, url, body, want_status, want_code, word in _bad_inputs(app):
        status, payload, _ = http(method, url, raw=body if method == "POST" else None)
        assert status == want_status, (name, status, payload)
        assert isinstance(payload, dict) and "error" in payload, (name, payload)
        err = payload["error"]
        assert err["status"] == want_status and isinstance(err["message"], str) and len(err["message"]) > 20, (name, err)
        if want_code:
            assert err["code"] == want_code, (name, err)
        assert word in err["message"], (name, err["message"])
        assert "Traceback" not in err["message"], (name, err["message"])
    # Still serving.
    status, body, _ = http("POST", f"{app['api']}/policies/{pid}/act", {"observation": [0.0, 0.0, 0.0, 0.0]})
    assert status == 200 and len(body["action"]) == 1
    assert http("GET", f"{app['api']}/health")[0] == 200


# ------------------------------------------------------------------ limits


def _raw(url: str, request: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """Send raw bytes on one connection; (status, response body) of the first response."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(head.split()[1]), rest


def test_body_limit_is_enforced_before_the_body_is_read(app):
    """A declared 50 MB body is refused at once (nothing of it sent); a chunked body without a
    length is cut off as soon as it passes the limit."""
    pid = app["checkpoints"][0]
    for path in (f"/api/v1/policies/{pid}/act", f"/api/v1/policies/{pid}/rollouts"):
        t0 = time.monotonic()
        status, body = _raw(app["url"], f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n".encode())
        assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large", (path, status, body)
        assert time.monotonic() - t0 < 5
    chunk = b"[" + b"0," * (1024 * 1024)  # 2 MiB per chunk, 5 chunks: past the 8 MiB limit
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    status, body = _raw(app["url"], f"POST /api/v1/policies/{pid}/act HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunked)
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"
    assert http("POST", f"{app['api']}/policies/{pid}/act", {"observation": [0.0] * 4})[0] == 200


def _wait_job(app: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while job["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        job = http("GET", f"{app['api']}/videos/jobs/{job['job_id']}")[1]
    assert job["state"] == "done", job
    return job


def test_videos_and_render_jobs_are_bounded(app):
    """At most MAX_RENDERS videos render at once (more: 429), identical requests reuse their video,
    and a policy gets at most MAX_VIDEOS on-demand videos (rollout videos included)."""
    from mprl.lineage import LineageStore

    pid = app["checkpoints"][1]  # not the one the page test clicks
    url = f"{app['api']}/policies/{pid}/videos"
    with LineageStore(app["run_dir"], readonly=True) as store:  # e.g. the rollout video of the test above
        earlier = len({v["path"] for v in store.videos(pid) if v["source"] in ("serve", "rollouts")})
    assert earlier + 2 <= MAX_VIDEOS
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda seed: http("POST", url, {"steps": 120, "seed": seed}), [101, 102, 103]))
    statuses = sorted(a[0] for a in answers)
    assert statuses == [202, 202, 429], answers
    busy = next(a[1] for a in answers if a[0] == 429)
    assert busy["error"]["code"] == "render_busy" and str(MAX_RENDERS) in busy["error"]["message"]
    accepted = [(seed, _wait_job(app, a[1])) for seed, a in zip([101, 102, 103], answers) if a[0] == 202]
    jobs = [j for _, j in accepted]
    again = http("POST", url, {"steps": 120, "seed": accepted[0][0]})
    assert again[0] == 200 and again[1]["state"] == "done" and again[1]["video_id"] == accepted[0][1]["video_id"]  # reused, not re-rendered
    made = earlier + len(jobs)
    seed = 200
    while made < MAX_VIDEOS:
        status, job, _ = http("POST", url, {"steps": 30, "seed": seed})
        assert status == 202, job
        _wait_job(app, job)
        made, seed = made + 1, seed + 1
    status, refused, _ = http("POST", url, {"steps": 30, "seed": seed})
    assert status == 429 and refused["error"]["code"] == "video_limit" and str(MAX_VIDEOS) in refused["error"]["message"]
    status, refused, _ = http("POST", f"{app['api']}/policies/{pid}/rollouts", {"seeds": [0], "video": True, "max_steps": 20})
    assert status == 429 and refused["error"]["code"] == "video_limit"
    assert http("POST", url, {"steps": 30, "seed": 200})[0] == 200  # one of its videos: still answered
    stats = http("GET", f"{app['api']}/stats")[1]
    assert stats["renders_active"] == 0 and 0 < stats["video_jobs"] <= 256


def test_job_table_forgets_the_oldest_finished_jobs_first():
    from mprl.serve.app import JobTable

    table = JobTable(3)
    for i, state in enumerate(["done", "running", "failed"]):
        assert table.add({"job_id": f"j{i}", "state": state})
    assert table.add({"job_id": "j3", "state": "queued"}) and table.get("j0") is None and len(table) == 3
    assert table.add({"job_id": "j4", "state": "queued"}) and table.get("j2") is None  # the next finished one
    assert not table.add({"job_id": "j5", "state": "queued"})  # only unfinished jobs left: refused
    assert [table.get(k)["state"] for k in ("j1", "j3", "j4")] == ["running", "queued", "queued"]


def test_unknown_ids_rescan_the_catalogue_at_most_once_a_second(app):
    time.sleep(1.1)  # past the rate limit's window of any rescan an earlier test caused
    before = http("GET", f"{app['api']}/stats")[1]["catalog_rescans"]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: http("POST", f"{app['api']}/policies/ck-{i:010d}/act", {"observation": [0.0] * 4})[0], range(300)))
    health = http("GET", f"{app['api']}/health")[0]
    deadline = time.monotonic() + 3  # the rescan runs in a worker thread: let it be counted
    while (rescans := http("GET", f"{app['api']}/stats")[1]["catalog_rescans"] - before) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    assert set(answers) == {404} and health == 200
    assert 1 <= rescans <= elapsed + 2, (rescans, elapsed)


def test_soak_10k_act_requests_from_16_clients(app):
    """10,000 `act` requests from 16 keep-alive clients on 127.0.0.1: no error; p50/p99 printed."""
    import asyncio

    from mprl.benchmarks.serve import Conn, post_request

    pid = app["checkpoints"][0]
    host, port = app["url"].split("//")[1].split(":")
    request = post_request(host, int(port), f"/api/v1/policies/{pid}/act", {"observation": [0.01, -0.02, 0.03, 0.0]})
    clients, per_client = 16, 625
    latencies: list[float] = []
    errors: list[tuple[int, bytes]] = []

    async def client() -> None:
        conn = await Conn.open(host, int(port))
        try:
            for _ in range(per_client):
                t = time.perf_counter()
                status, body = await conn.send(request)
                latencies.append(time.perf_counter() - t)
                if status != 200 or b'"action"' not in body:
                    errors.append((status, body[:200]))
        finally:
            conn.close()

    async def main() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - t0

    wall = asyncio.run(main())
    p50, p99 = (float(np.percentile(latencies, q)) * 1000 for q in (50, 99))
    print(f"\nsoak: {len(latencies):,} act requests, 16 clients, {wall:.1f} s ({len(latencies) / wall:,.0f}/s), "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {len(errors)} errors")
    assert len(latencies) == 10_000 and not errors, errors[:3]
