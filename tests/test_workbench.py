"""The web workbench's API for real: `mprl serve` on 127.0.0.1 over the demo run (the server of
tests/test_serve.py), real HTTP requests, real phase schedulers started by the server on its own
Ray. Assets; the control token every state change needs in a header; a launch form validated as
YAML with each error on its field; a new run and a branch of the demo run launched from a
checkpoint and followed to the end; stop and resume of a launched run; compare.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from test_serve import http, release_app, served_app

TIMEOUT_S = 420


@pytest.fixture(scope="module")
def app(request, ray_local, tmp_path_factory):
    yield served_app(ray_local, tmp_path_factory)
    release_app(request)


def _control(app: dict[str, Any]) -> dict[str, str]:
    return {"X-Mprl-Token": (Path(app["storage"]) / "control-token").read_text().strip()}


def _form(app: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """Continue TD3 from the demo's last checkpoint for a few hundred env steps."""
    return {"checkpoint": app["checkpoints"][2], "algorithm": "td3", "budget": 400, "seeds": [0],
            "evaluation": {"interval": 200, "episodes": 2}, "config": {"hidden": [64, 64]}, **kw}


def _follow(app: dict[str, Any], run_id: str, until: Any, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    offset = 0
    while True:
        status, body, _ = http("GET", f"{app['api']}/runs/{run_id}/progress?offset={offset}")
        assert status == 200, body
        lines += body["lines"]
        offset = body["offset"]
        if until(body):
            return {**body, "all_lines": lines}
        assert time.monotonic() < deadline, f"run {run_id} did not get there in {timeout} s: {body['status']}, {lines[-5:]}"
        time.sleep(1.0)


def test_assets_list_the_catalogue_environments_and_checkpoints(app):
    status, body, _ = http("GET", f"{app['api']}/assets/algorithms")
    assert status == 200
    td3 = next(a for a in body["algorithms"] if a["name"] == "td3")
    assert "online" in td3["paradigms"] and any(s["name"] == "actor_lr" for s in td3["settings"])
    status, body, _ = http("GET", f"{app['api']}/assets/checkpoints")
    assert status == 200 and set(app["checkpoints"]) <= {c["policy_id"] for c in body["checkpoints"]}
    status, body, _ = http("GET", f"{app['api']}/assets/environments")
    assert status == 200 and "InvertedPendulum-v5" in str(body)


def test_state_changes_need_the_control_token_in_a_header(app):
    for path, body in (("launch", _form(app)), ("datasets/build", {"env": "InvertedPendulum-v5"}),
                       (f"runs/{app['run_id']}/stop", {}), (f"runs/{app['run_id']}/resume", {})):
        status, out, _ = http("POST", f"{app['api']}/{path}", body)
        assert status == 401 and out["error"]["code"] == "control_token_required", (path, out)
        status, out, _ = http("POST", f"{app['api']}/{path}", body, headers={"X-Mprl-Token": "wrong"})
        assert status == 401, (path, out)
    # A cookie is not a header: a page on another site can make the browser send one.
    token = _control(app)["X-Mprl-Token"]
    status, out, _ = http("POST", f"{app['api']}/launch", _form(app), headers={"Cookie": f"mprl_token={token}"})
    assert status == 401


def test_launch_check_puts_each_error_on_its_field(app):
    status, out, _ = http("POST", f"{app['api']}/launch/check", _form(app, algorithm="td4", budget=-5))
    assert status == 200 and out["valid"] is False
    assert "td4" in out["errors"]["algorithm"] and "budget" in out["errors"]
    status, out, _ = http("POST", f"{app['api']}/launch/check", _form(app, checkpoint="/etc/passwd"))
    assert out["valid"] is False and "by its id" in out["errors"]["checkpoint"]
    status, out, _ = http("POST", f"{app['api']}/launch/check", _form(app))
    assert out["valid"] is True and out["transfer"]["possible"] and out["mode"] == "branch"
    assert f"checkpoint: {app['run_dir']}" in out["yaml"] or "init_from:" in out["yaml"]


def test_launch_a_new_run_then_a_branch_of_the_demo_run(app):
    from mprl.lineage import LineageStore

    status, out, _ = http("POST", f"{app['api']}/launch", _form(app, mode="new_run", name="from-page"), headers=_control(app))
    assert status == 202, out
    new_run = out["run_id"]
    done = _follow(app, new_run, lambda b: not b["active"] and b["status"] != "running")
    assert done["status"] == "succeeded" and done["checkpoints"] >= 1, done["all_lines"][-10:]
    (new_node,) = [p["node_id"] for p in done["phases"]]

    ck = app["checkpoints"][2]
    status, out, _ = http("POST", f"{app['api']}/launch", _form(app, phase="more"), headers=_control(app))
    assert status == 202 and out["run_id"] == app["run_id"], out
    done = _follow(app, app["run_id"], lambda b: not b["active"] and any(p["phase"] == "more" and p["status"] == "succeeded" for p in b["phases"]))
    with LineageStore(app["run_dir"], readonly=True) as store:
        nodes = {n["phase"]: n for n in store.nodes()}
        assert store.run()["status"] == "succeeded"
    assert set(nodes) == {"pretrain", "finetune", "more"}  # the finished phases kept, not re-run
    assert nodes["more"]["parent_checkpoint_id"] == ck and ck in nodes["more"]["branch"]

    # The two continuations of one checkpoint side by side (the page's Compare view).
    status, cmp, _ = http("GET", f"{app['api']}/compare?phase_runs={new_run}/{new_node},{app['run_id']}/{nodes['more']['node_id']}")
    assert status == 200, cmp
    assert [row["key"] for row in cmp["table"]] == [f"{new_run}/{new_node}", f"{app['run_id']}/{nodes['more']['node_id']}"]
    assert [p["axis"] for p in cmp["panels"]] == ["num_env_steps"] and len(cmp["panels"][0]["series"]) == 2


def test_stop_and_resume_a_launched_run(app):
    form = _form(app, mode="new_run", name="long-from-page", budget=50_000)
    status, out, _ = http("POST", f"{app['api']}/launch", form, headers=_control(app))
    assert status == 202, out
    run_id = out["run_id"]
    _follow(app, run_id, lambda b: any(p["status"] == "running" for p in b["phases"]))
    status, out, _ = http("POST", f"{app['api']}/runs/{run_id}/stop", {}, headers=_control(app))
    assert status == 200 and out["status"] == "stopped", out
    stopped = _follow(app, run_id, lambda b: not b["active"], timeout=120)
    assert stopped["status"] == "stopped"
    status, out, _ = http("POST", f"{app['api']}/runs/{run_id}/resume", {}, headers=_control(app))
    assert status == 202, out
    _follow(app, run_id, lambda b: b["active"] and b["status"] == "running", timeout=120)
    status, out, _ = http("POST", f"{app['api']}/runs/{run_id}/stop", {}, headers=_control(app))  # leave nothing running
    assert status == 200
