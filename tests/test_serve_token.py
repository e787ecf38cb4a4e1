"""`mprl serve` bound to a non-loopback address: a token is generated, printed, stored with
mode 600, and every request needs it (header or the page's cookie)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from test_serve import REPO, _free_port_pair, _stop


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # see the 303 itself
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, r.read(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}


def test_resolve_token_generates_one_off_loopback_only(tmp_path):
    from mprl.serve.app import resolve_token

    assert resolve_token("127.0.0.1", None, tmp_path / "t") == (None, None)
    assert resolve_token("::1", None, tmp_path / "t") == (None, None)
    assert resolve_token("127.0.0.1", "given", tmp_path / "t") == ("given", None)
    (tmp_path / "t").write_text("old")
    os.chmod(tmp_path / "t", 0o644)
    token, path = resolve_token("0.0.0.0", None, tmp_path / "t")
    assert path == tmp_path / "t" and path.read_text() == token and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_non_loopback_server_needs_the_token_on_every_request(tmp_path):
    port = _free_port_pair()
    token_file = tmp_path / "serve-token"
    (tmp_path / "runs").mkdir()
    log = tmp_path / "serve.log"
    env = {**os.environ, "MUJOCO_GL": "egl", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    env.pop("MPRL_SERVE_TOKEN", None)
    cmd = [sys.executable, "-m", "mprl.cli", "serve", "--storage-path", str(tmp_path / "runs"), "--host", "0.0.0.0", "--port", str(port),
           "--token-file", str(token_file), "--num-cpus", "1"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while "every request needs this token" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        token = token_file.read_text()
        assert token in log.read_text() and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert "Token authentication" not in log.read_text()
        bearer = {"Authorization": f"Bearer {token}"}

        for path in ("/api/v1/health", "/api/v1/runs", "/", "/static/app.js"):
            status, body, headers = _get(base + path)
            assert status == 401 and b"token_required" in body, (path, status, body)
        assert _get(base + "/api/v1/health", {"Authorization": "Bearer wrong"})[0] == 401
        # The act fast path is behind the same check (and a refused request's body is never read).
        req = urllib.request.Request(f"{base}/api/v1/policies/ck-0000000000/act", data=b'{"observation": [0]}', method="POST")
        try:
            urllib.request.urlopen(req, timeout=30)
            raise AssertionError("act answered without a token")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        assert _get(base + "/api/v1/health", bearer)[0] == 200
        assert _get(base + "/api/v1/health", {"X-Mprl-Token": token})[0] == 200
        status, _, headers = _get(f"{base}/?token={token}")  # the page: once by URL, then a cookie
        assert status == 303 and headers["set-cookie"].startswith(f"mprl_token={token}") and "HttpOnly" in headers["set-cookie"]
        status, page, _ = _get(base + "/", {"Cookie": f"mprl_token={token}"})
        assert status == 200 and b"<html" in page.lower()
    finally:
        _stop(proc)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert Path(log).exists()
